#!/usr/bin/env python3
"""Sends the S3 lake's raw-file notifications to an SQS queue, where each dataset's asset watcher hears
them (dags/driftwood_lake_queue.py, docs/data.md "S3 notifications start the pipeline").

    .venvs/airflow/bin/python scripts/lake-notifications.py --lake s3://bucket/prefix --queue-url URL

Idempotent: it sets one notification (id ``driftwood-raw``: every ``s3:ObjectCreated:*`` under
``<prefix>/raw/``) among the bucket's others, which it keeps, and one statement (sid
``driftwood-lake-notifications``) in the queue's policy letting S3 send from this bucket only; run
again, it sets the same. It deletes the test events S3 sends when a notification is set. Credentials,
region and endpoint come from botocore's chain (``AWS_ENDPOINT_URL`` for an emulator).
Prints what it set as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

NOTIFICATION_ID = "driftwood-raw"
POLICY_SID = "driftwood-lake-notifications"


def queue_policy(policy: dict[str, Any] | None, queue_arn: str, bucket: str) -> dict[str, Any]:
    """The queue's policy with this bucket's send permission in place of any earlier one (pure)."""
    policy = dict(policy or {"Version": "2012-10-17"})
    kept = [s for s in policy.get("Statement", []) if s.get("Sid") != POLICY_SID]
    statement = {
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
    }
    return {**policy, "Statement": [*kept, statement]}


def bucket_notifications(current: dict[str, Any], queue_arn: str, raw_prefix: str) -> dict[str, Any]:
    """The bucket's notification configuration with ours in place of any earlier one (pure)."""
    config = {k: v for k, v in current.items() if k != "ResponseMetadata"}
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != NOTIFICATION_ID]
    ours = {
        "Id": NOTIFICATION_ID,
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": raw_prefix}]}},
    }
    return {**config, "QueueConfigurations": [*queues, ours]}


def drop_test_events(sqs: Any, queue_url: str) -> int:
    """Deletes the ``s3:TestEvent`` messages S3 sends when a notification is set: no watcher keeps them,
    so they would stay on the queue until its retention ends. Other messages are made visible again."""
    dropped = 0
    for _ in range(3):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            try:
                test = json.loads(message["Body"]).get("Event") == "s3:TestEvent"
            except (ValueError, AttributeError):
                test = False
            if test:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                dropped += 1
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return dropped


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", default=os.environ.get("DRIFTWOOD_LAKE_URI"), help="s3://bucket/prefix")
    parser.add_argument("--queue-url", default=os.environ.get("DRIFTWOOD_LAKE_QUEUE_URL"))
    args = parser.parse_args(argv)
    lake = urlsplit(args.lake or "")
    if lake.scheme != "s3" or not lake.netloc or not args.queue_url:
        parser.error(
            "set --lake s3://bucket/prefix (DRIFTWOOD_LAKE_URI) and --queue-url (DRIFTWOOD_LAKE_QUEUE_URL)"
        )
    import boto3

    region = os.environ.get("DRIFTWOOD_S3_REGION") or os.environ.get("AWS_REGION") or None
    bucket, prefix = lake.netloc, lake.path.strip("/")
    raw_prefix = f"{prefix}/raw/" if prefix else "raw/"
    sqs = boto3.client("sqs", region_name=region)
    s3 = boto3.client("s3", region_name=region)

    attributes = sqs.get_queue_attributes(QueueUrl=args.queue_url, AttributeNames=["QueueArn", "Policy"])
    queue_arn = attributes["Attributes"]["QueueArn"]
    current_policy = json.loads(attributes["Attributes"].get("Policy") or "null")
    policy = queue_policy(current_policy, queue_arn, bucket)
    # The policy first: S3 checks that it may send to the queue before it takes the notification.
    sqs.set_queue_attributes(QueueUrl=args.queue_url, Attributes={"Policy": json.dumps(policy)})
    config = bucket_notifications(
        s3.get_bucket_notification_configuration(Bucket=bucket), queue_arn, raw_prefix
    )
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    drop_test_events(sqs, args.queue_url)
    print(
        json.dumps(
            {"bucket": bucket, "prefix": raw_prefix, "queueArn": queue_arn, "notification": NOTIFICATION_ID}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
