"""The application's artifact store, chosen by settings: an S3 bucket when one is named, else a folder.

Every process of a distributed run (engine workers, requesters) must use the same store, so a
result written by one is readable by the others: S3 across machines, the local folder when they
share one file system (the embedded default).
"""

from __future__ import annotations

from bus.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from risklab.settings import Settings


def artifact_store(settings: Settings) -> ArtifactStore:
    """`S3ArtifactStore` when `artifacts_s3_bucket` is set, else `LocalArtifactStore(artifacts_path)`.

    S3 credentials come from boto3's usual chain (the environment), never from the settings.
    """
    if settings.artifacts_s3_bucket:
        return S3ArtifactStore(
            settings.artifacts_s3_bucket,
            prefix=settings.artifacts_s3_prefix,
            endpoint_url=settings.artifacts_s3_endpoint_url,
            region=settings.artifacts_s3_region,
        )
    return LocalArtifactStore(settings.artifacts_path)
