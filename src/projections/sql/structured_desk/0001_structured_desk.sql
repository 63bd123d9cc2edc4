-- The structured-products desk view of one generation (see projections.structured_desk): one row
-- per design request, and the figures each agent concluded, each row with the event it came from.
-- `__schema__` is replaced by the generation's schema (see projections.generations).
CREATE SCHEMA IF NOT EXISTS __schema__;

-- One row per design request. `stages` maps each event type seen to {event_id, occurred_at}; the
-- status follows from it, so it does not depend on the order in which the stages arrived.
CREATE TABLE __schema__.structured_requests (
    request_id      text        PRIMARY KEY,
    correlation_id  uuid,
    stages          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        GENERATED ALWAYS AS (
        CASE
            WHEN stages ? 'structured.product_design_rejected' THEN 'rejected'
            WHEN stages ? 'structured.product_proposal_published' THEN 'proposed'
            WHEN stages - 'structured.product_design_requested' <> '{}'::jsonb THEN 'in_progress'
            ELSE 'requested'
        END
    ) STORED,
    requested_at    timestamptz,
    updated_at      timestamptz NOT NULL,
    requirements    jsonb,
    constraints     jsonb,
    client_base     text,
    market_uri      text,
    market_sha256   text,
    market_checks   jsonb,
    rejected_by     text,
    rejected_field  text,
    rejected_reason text,
    recommendation  text,
    proposal        jsonb
);
CREATE INDEX structured_requests_updated ON __schema__.structured_requests (updated_at DESC);

-- The quant researcher's priced variations (StructuresProposed).
CREATE TABLE __schema__.structured_structures (
    request_id               text             NOT NULL,
    structure_id             text             NOT NULL,
    spec                     jsonb            NOT NULL,
    price                    double precision NOT NULL,
    stderr                   double precision NOT NULL,
    issuer_margin            double precision NOT NULL,
    coupon_rate              double precision NOT NULL,
    fair_coupon              double precision,
    autocall_probability     double precision NOT NULL,
    autocall_by_date         jsonb            NOT NULL,
    expected_life_years      double precision NOT NULL,
    knock_in_probability     double precision NOT NULL,
    capital_loss_probability double precision NOT NULL,
    irr_mean                 double precision NOT NULL,
    irr_median               double precision NOT NULL,
    target_score             double precision NOT NULL,
    meets_targets            boolean          NOT NULL,
    greeks                   jsonb            NOT NULL,
    target_gaps              jsonb            NOT NULL,
    event_id                 uuid             NOT NULL,
    PRIMARY KEY (request_id, structure_id)
);

-- The market strategist's verdict on each structure's assumptions (AssumptionsValidated).
CREATE TABLE __schema__.structured_assumptions (
    request_id   text    NOT NULL,
    structure_id text    NOT NULL,
    accepted     boolean NOT NULL,
    rejected     jsonb   NOT NULL,
    event_id     uuid    NOT NULL,
    PRIMARY KEY (request_id, structure_id)
);

-- The market strategist's scenarios (ScenariosGenerated); figures: returns, vols, correlation, rate shift.
CREATE TABLE __schema__.structured_scenarios (
    request_id     text             NOT NULL,
    scenario_id    text             NOT NULL,
    kind           text             NOT NULL,
    regime         text             NOT NULL,
    horizon_months integer          NOT NULL,
    probability    double precision NOT NULL,
    figures        jsonb            NOT NULL,
    event_id       uuid             NOT NULL,
    PRIMARY KEY (request_id, scenario_id)
);

-- The risk manager's stress results per structure (StressTested).
CREATE TABLE __schema__.structured_stress (
    request_id                   text             NOT NULL,
    structure_id                 text             NOT NULL,
    var_99                       double precision,
    es_99                        double precision,
    stressed_var_99              double precision NOT NULL,
    gap_risk                     double precision NOT NULL,
    trigger_risk                 double precision NOT NULL,
    capital_at_risk              double precision NOT NULL,
    capital_at_risk_delta_hedged double precision NOT NULL,
    capital_at_risk_unhedged     double precision NOT NULL,
    worst_scenario               text             NOT NULL,
    passes                       boolean          NOT NULL,
    breaches                     jsonb            NOT NULL,
    hedge                        jsonb            NOT NULL,
    var_levels                   jsonb            NOT NULL,
    es_levels                    jsonb            NOT NULL,
    event_id                     uuid             NOT NULL,
    PRIMARY KEY (request_id, structure_id)
);

-- The distribution specialist's client segments (DistributionPlanned).
CREATE TABLE __schema__.structured_segments (
    request_id text    NOT NULL,
    segment_id text    NOT NULL,
    label      text    NOT NULL,
    size       integer NOT NULL,
    attributes jsonb   NOT NULL,
    event_id   uuid    NOT NULL,
    PRIMARY KEY (request_id, segment_id)
);

-- The suitability matrix, structure x segment, and which pairs the plan assigns (DistributionPlanned).
CREATE TABLE __schema__.structured_suitability (
    request_id        text             NOT NULL,
    structure_id      text             NOT NULL,
    segment_id        text             NOT NULL,
    score             double precision NOT NULL,
    assigned          boolean          NOT NULL,
    value_proposition text,
    reasons           jsonb            NOT NULL,
    event_id          uuid             NOT NULL,
    PRIMARY KEY (request_id, structure_id, segment_id)
);

-- The compliance officer's decision per structure under one rulebook version (ComplianceReviewed).
CREATE TABLE __schema__.structured_compliance (
    request_id             text  NOT NULL,
    structure_id           text  NOT NULL,
    decision               text  NOT NULL,
    rulebook_name          text  NOT NULL,
    rulebook_version       text  NOT NULL,
    rulebook_sha256        text  NOT NULL,
    rules_fired            jsonb NOT NULL,
    conditions             jsonb NOT NULL,
    target_market          jsonb NOT NULL,
    negative_target_market jsonb NOT NULL,
    kid                    jsonb,
    documents              jsonb NOT NULL,
    event_id               uuid  NOT NULL,
    PRIMARY KEY (request_id, structure_id)
);

-- The desk integrator's ranking (ProductProposalPublished); rank 1 is the first of the published list.
CREATE TABLE __schema__.structured_ranking (
    request_id     text             NOT NULL,
    structure_id   text             NOT NULL,
    rank           integer          NOT NULL,
    score          double precision NOT NULL,
    components     jsonb            NOT NULL,
    pareto_optimal boolean          NOT NULL,
    eligible       boolean          NOT NULL,
    segments       jsonb            NOT NULL,
    event_id       uuid             NOT NULL,
    PRIMARY KEY (request_id, structure_id)
);
