"""Objects the project keeps in a Prefect server, made idempotently (`make server`, deploy):
the report location block, the alerts' notification block and automations. A re-run updates
each in place by name and never adds a second one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from revops.connectors.report_location import load_block
from revops.errors import ConfigError

REPORTS_BLOCK_NAME = "revops-reports"
ALERTS_BLOCK_NAME = "revops-alerts"


def ensure_report_block(folder: Path, name: str = REPORTS_BLOCK_NAME) -> str:
    """A LocalFileSystem block named `name` over `folder` (made or updated); its slug, the
    value of REVOPS_REPORTS_BLOCK."""
    from prefect.filesystems import LocalFileSystem

    folder.mkdir(parents=True, exist_ok=True)
    LocalFileSystem(basepath=str(folder.resolve())).save(name, overwrite=True)
    return f"local-file-system/{name}"


def ensure_webhook_block(url: str, name: str = ALERTS_BLOCK_NAME) -> str:
    """A Custom Webhook notification block `name` POSTing JSON {subject, body} to `url` (made
    or updated); its slug, a value for REVOPS_ALERTS_BLOCK. Slack's incoming webhooks take
    the same block (their `text` field carries the message)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name=name,
        url=url,
        json_data={"subject": "{{subject}}", "body": "{{body}}", "text": "{{subject}}\n{{body}}"},
    ).save(name, overwrite=True)
    return f"custom-webhook/{name}"


def ensure_automations(definitions: Iterable[dict[str, Any]], notify_block: str) -> list[str]:
    """Create each automation of `definitions` (prefect.automations.Automation's shape), or
    update the one of that name in place (further ones of that name, left by hand, are
    deleted); each send-notification action notifies through the block `notify_block` (a slug
    such as `slack-webhook/revops-alerts`). Returns what was done, one line per automation."""
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client

    block_id = _block_document_id(notify_block)
    done = []
    with get_client(sync_client=True) as client:
        for definition in definitions:
            wanted = Automation.model_validate(_with_block(definition, block_id))
            existing = client.read_automations_by_name(wanted.name)
            if not existing:
                wanted.create()
                done.append(f"created automation {wanted.name}")
                continue
            first, *extra = existing
            Automation(**{**wanted.model_dump(exclude={"id"}), "id": first.id}).update()
            for duplicate in extra:
                client.delete_automation(duplicate.id)
            done.append(f"updated automation {wanted.name}")
    return done


def _with_block(definition: dict[str, Any], block_id: UUID) -> dict[str, Any]:
    actions = [
        {**action, "block_document_id": str(block_id)}
        if action.get("type") == "send-notification"
        else action
        for action in definition.get("actions", [])
    ]
    return {**definition, "actions": actions}


def _block_document_id(slug: str) -> UUID:
    from prefect.blocks.notifications import NotificationBlock

    block = load_block(
        slug, "REVOPS_ALERTS_BLOCK", NotificationBlock, "a notification block", ConfigError
    )
    if block._block_document_id is None:
        raise ConfigError(f"REVOPS_ALERTS_BLOCK {slug!r} has no saved document")
    return block._block_document_id
