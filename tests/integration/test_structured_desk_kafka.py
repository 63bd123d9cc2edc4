"""The structured desk on real Kafka and PostgreSQL, run the way a user deploys it: the desk's agents
(`risklab run structured`), two engine workers sharing the compute and the projector, each its own
process. A design request becomes a proposal even though the agents' process is killed (SIGKILL)
in the middle of it; every event exists exactly once; both workers computed; the desk view and
`risklab structured show` answer; a bad request through `risklab structured request` is rejected
with the field named."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter

import pytest
from harness import Deployment, deployment_env, new_namespace, risklab_executable, wait_for

from bus.artifacts import LocalArtifactStore
from bus.codec import decode
from bus.database import connect_pool
from bus.envelope import Envelope
from bus.topics import COMPUTE_RESULTS, DESK_STRUCTURED
from risklab import queries
from risklab.servers import open_transport
from risklab.settings import Settings
from risklab.structured_desk import STAGE_OF_TYPE, build_request, sample_request_data, submit_and_follow

pytestmark = pytest.mark.integration
DESK_TYPES = {t for t in STAGE_OF_TYPE if t != "structured.product_design_rejected"}


def small_request(**targets: float) -> dict:
    data = sample_request_data()
    data["requirements"]["grid"] = {"barriers": [0.55, 0.6, 0.65], "coupons": [0.06, 0.09]}
    data["requirements"]["targets"].update(targets)
    data["constraints"] = {"min_variations": 18, "paths": 8192, "seed": 3, "chunks": 4, "stress_scenarios": 16}
    return data


async def read_all(transport, topic: str) -> list[Envelope]:
    ends = await transport.end_offsets([topic])
    sub = await transport.subscribe(f"reader-{new_namespace()}", [topic])
    got: dict[tuple[int, int], Envelope] = {}
    try:

        async def read() -> bool:
            for records in (await sub.poll(1.0, 5_000)).values():
                for r in records:
                    if r.offset < ends[r.tp]:
                        got[(r.partition, r.offset)] = decode(r.value).envelope
            return len(got) >= sum(ends.values())

        await wait_for(read, 60, f"the records of {topic}", interval=0)
    finally:
        await sub.close()
    return [got[k] for k in sorted(got)]


async def test_structured_desk_on_kafka_survives_a_killed_agent_process(servers, database_url, tmp_path):
    namespace = new_namespace()
    home = tmp_path / "home"
    env = deployment_env(servers.kafka_bootstrap, database_url, namespace, home)
    (tmp_path / "logs").mkdir()
    dep = Deployment(env, tmp_path / "logs")
    settings = Settings(transport="kafka", kafka_bootstrap=servers.kafka_bootstrap, namespace=namespace)
    transport = open_transport(settings, client_id="structured-e2e")
    await transport.start()
    pool = await connect_pool(database_url)
    store = LocalArtifactStore(home / "artifacts")
    try:
        for group, name in (
            ("projector", None),
            ("structured", None),
            ("engine-worker", "engine-worker-a"),
            ("engine-worker", "engine-worker-b"),
        ):
            dep.start(group, name)

        async def topics_exist() -> bool:
            dep.check_alive()
            try:
                await transport.end_offsets([DESK_STRUCTURED, COMPUTE_RESULTS])
                return True
            except Exception:
                return False

        await wait_for(topics_exist, 90, "the processes to create the topics")
        request = build_request(small_request(), store)
        killed: list[str] = []

        def on_event(envelope: Envelope) -> None:
            # the agents' process dies with the stress and the KIDs out on the engine workers
            if envelope.type == "structured.distribution_planned" and not killed:
                dep.kill("structured")
                killed.append(envelope.type)
                dep.start("structured")

        outcome = await submit_and_follow(transport, request, timeout=600, on_event=on_event)
        assert killed, "the agents' process was never killed"
        assert outcome.final.type == "structured.product_proposal_published", outcome.final.payload

        # the killed process may have published an outbox row without marking it sent: after the
        # restart its relay publishes it again, with the same id and payload, which consumers skip
        desk: dict[object, Envelope] = {}
        for e in await read_all(transport, DESK_STRUCTURED):
            if e.key == request.request_id:
                first = desk.setdefault(e.event_id, e)
                assert (first.type, first.payload) == (e.type, e.payload)
        assert Counter(e.type for e in desk.values()) == dict.fromkeys(DESK_TYPES, 1)
        results = await read_all(transport, COMPUTE_RESULTS)
        workers = {decode_worker(e) for e in results if e.payload["request_id"].startswith(request.request_id)}
        assert len(workers) == 2, workers

        async def projected() -> bool:
            view = await queries.structured_request(pool, request.request_id)
            return view is not None and view["status"] == "proposed"

        await wait_for(projected, 60, "the desk view to show the proposal")

        async def audited_once() -> bool:
            async with pool.acquire() as conn:
                rows = await queries.audit_show(conn, outcome.final.correlation_id)
            return Counter(r["type"] for r in rows if r["type"].startswith("structured.")) == dict.fromkeys(
                DESK_TYPES, 1
            )

        await wait_for(audited_once, 60, "the audit trail to hold every desk event once")
        shown = await asyncio.to_thread(
            subprocess.run,
            [risklab_executable(), "structured", "show", request.request_id, "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["status"] == "proposed"

        # a bad request through the CLI ends in a rejection naming the field, exit code 1
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(small_request(client_return=0.6)))
        proc = await asyncio.create_subprocess_exec(
            risklab_executable(), "structured", "request", str(bad), "--json", "--timeout", "300",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, errs = await asyncio.wait_for(proc.communicate(), 360)
        assert proc.returncode == 1, errs.decode()
        rejected = json.loads(out)
        assert rejected["type"] == "structured.product_design_rejected"
        assert rejected["payload"]["field"] == "requirements.targets.client_return"
        dep.check_alive()
    finally:
        dep.close()
        await pool.close()
        await transport.close()


def decode_worker(envelope: Envelope) -> str:
    return envelope.payload["worker"]
