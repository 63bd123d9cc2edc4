"""The XVA engine as compute kinds (`xva.*`) that engine workers run on request."""

from engines.xva.compute import book, saccr  # noqa: F401
