"""Slack notifications for Driftwood tasks through the Slack provider's incoming-webhook notifier.

Messages go to the Airflow connection ``driftwood_slack`` (type ``slackwebhook``; the webhook URL or
token in the password field). Without that connection notifications are off: the callback logs one
line and the task's outcome is untouched. Each message names the DAG, the task, the run id, the try
and the task's log URL (built from ``[api] base_url``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

SLACK_CONN_ID = "driftwood_slack"

_WHERE = "DAG `{{ dag.dag_id }}` · task `{{ ti.task_id }}` · run `{{ run_id }}` · try {{ ti.try_number }}"
FAILURE_TEXT = ":red_circle: Driftwood task failed\n" + _WHERE + "\nLog: {{ ti.log_url }}"
SUCCESS_TEXT = ":large_green_circle: Driftwood run succeeded\n" + _WHERE + "\nLog: {{ ti.log_url }}"
SKIPPED_TEXT = (
    ":large_yellow_circle: Driftwood quality gate not passed (task skipped, champion unchanged)\n"
    + _WHERE
    + "\nLog: {{ ti.log_url }}"
)

log = logging.getLogger(__name__)


class DriftwoodSlackNotifier(SlackWebhookNotifier):
    """The provider's notifier, rendered on a copy per call and silent without a connection."""

    def __call__(self, *args: Any) -> None:
        # Rendering replaces the templates in place; a copy keeps them for the next try or task.
        SlackWebhookNotifier.__call__(copy.copy(self), *args)

    def notify(self, context: Any) -> None:
        if not _connection_exists(self.slack_webhook_conn_id):
            log.info("notification not sent: no Airflow connection %r", self.slack_webhook_conn_id)
            return
        super().notify(context)


def _connection_exists(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def failure_notifier() -> DriftwoodSlackNotifier:
    return DriftwoodSlackNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=FAILURE_TEXT)


def success_notifier() -> DriftwoodSlackNotifier:
    return DriftwoodSlackNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=SUCCESS_TEXT)


def skipped_notifier() -> DriftwoodSlackNotifier:
    return DriftwoodSlackNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=SKIPPED_TEXT)
