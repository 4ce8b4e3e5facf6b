"""Reading what a flow run left in the Prefect API in tests."""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import Artifact


def flow_run_artifacts(flow_run_id: str) -> dict[str, Artifact]:
    """The artifacts of one flow run, by key."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])
            )
        )
    return {a.key: a for a in artifacts if a.key}
