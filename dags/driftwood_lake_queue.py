"""Files landing in an S3 lake start their dataset's pipeline through the bucket's notifications.

The lake bucket sends an event notification for every object created under its raw prefix to one SQS
queue (``scripts/lake-notifications.py`` sets that up); when ``DRIFTWOOD_LAKE_QUEUE_URL`` names the
queue, each dataset's raw asset (``driftwood://<dataset>/raw``) gets an ``AssetWatcher`` whose
message-queue trigger (common-messaging's ``MessageQueueTrigger``, served for ``sqs`` by the amazon
provider's ``SqsSensorTrigger``) runs in the triggerer. A message becomes an event of the asset only when
one of its records is an object under that dataset's ``raw/<dataset>/`` in the lake's bucket: the
trigger deletes the messages it keeps and leaves the others on the queue for their own dataset's
watcher. The event's ``extra`` carries the messages (``{"from_trigger": true, "payload": {"message_batch":
[…]}}``); ``driftwood_steps.landed_as_of`` reads the landed partition from their object keys.

The SQS client is botocore's default chain: credentials from the environment or the pod's role, the
region from ``DRIFTWOOD_S3_REGION``/``AWS_REGION`` (else botocore's own), the endpoint from
``AWS_ENDPOINT_URL_SQS`` or ``AWS_ENDPOINT_URL`` (an emulator). Nothing connects at parse time. See
docs/data.md ("S3 notifications start the pipeline").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit

QUEUE_SETTING = "DRIFTWOOD_LAKE_QUEUE_URL"
# One long poll (SQS's maximum) per round, then a short pause: a landing is seen within seconds, while
# an idle queue costs three receive calls a minute per dataset.
WAIT_TIME_SECONDS = 20
PAUSE_SECONDS = 1


def lake_bucket_and_prefix(lake_uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")`` (``""`` for the bucket's root)."""
    parts = urlsplit(lake_uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(
            f"{QUEUE_SETTING} is set, so DRIFTWOOD_LAKE_URI must be the S3 lake the queue hears about "
            f"(s3://bucket/prefix), got {lake_uri!r}"
        )
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def raw_prefix(lake_prefix: str, dataset: str) -> str:
    """Where the dataset's raw files land in the bucket (docs/data.md: ``raw/<dataset>/dt=…/hr=…/``)."""
    return f"{lake_prefix}raw/{dataset}/"


def encoded_prefix_pattern(prefix: str) -> str:
    """A regular expression matching the start of an S3 notification's object key under ``prefix``.

    The key in a notification is URL-encoded the way HTML forms are: AWS writes ``=`` as ``%3D`` and
    keeps ``/``, moto writes ``/`` as ``%2F`` too; every character other than letters, digits and ``_``
    may therefore come either way. Characters go in brackets, so nothing needs a backslash inside the
    JSONPath string literal."""
    out = ["^"]
    for char in prefix:
        if char.isalnum() or char == "_":
            out.append(char)
            continue
        encoded = quote_plus(char)
        out.append(f"([{char}]|{encoded})" if encoded != char else f"[{char}]")
    return "".join(out)


def notification_filter(bucket: str, prefix: str) -> str:
    """The JSONPath (jsonpath-ng's extended syntax) that keeps a message with a record of an object
    created in ``bucket`` under ``prefix``; S3's test event, which has no records, never matches."""
    return (
        f'Records[?(@.s3.bucket.name == "{bucket}" && @.s3.object.key =~ "{encoded_prefix_pattern(prefix)}"'
        ' && @.eventName =~ "^ObjectCreated:")]'
    )


def raw_watchers(dataset: str, env: Mapping[str, str] | None = None) -> list[Any]:
    """The watchers of the dataset's raw asset: one on the lake's queue when ``DRIFTWOOD_LAKE_QUEUE_URL``
    is set, none otherwise (the lake's lander, or an upstream job, posts the event instead)."""
    env = os.environ if env is None else env
    queue_url = env.get(QUEUE_SETTING, "").strip()
    if not queue_url:
        return []
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    from airflow.sdk import AssetWatcher

    bucket, lake_prefix = lake_bucket_and_prefix(env.get("DRIFTWOOD_LAKE_URI", ""))
    region = env.get("DRIFTWOOD_S3_REGION") or env.get("AWS_REGION") or None
    trigger = MessageQueueTrigger(
        scheme="sqs",
        sqs_queue=queue_url,
        # No Airflow connection: botocore's chain (environment, pod role) and its endpoint settings.
        aws_conn_id=None,
        region_name=region,
        max_messages=10,
        wait_time_seconds=WAIT_TIME_SECONDS,
        waiter_delay=PAUSE_SECONDS,
        message_filtering="jsonpath-ext",
        message_filtering_config=notification_filter(bucket, raw_prefix(lake_prefix, dataset)),
    )
    return [AssetWatcher(name=f"{dataset}_lake_queue", trigger=trigger)]
