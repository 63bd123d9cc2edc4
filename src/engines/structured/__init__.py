"""The structured-products engine: autocallable notes, their pricing, Greeks, lab, stress grid and PRIIPs indicators."""
