"""The platform's SQS queues: acknowledging (deleting) a run's messages once they are recorded.

The watchers of both queues' assets (``include.airflow.assets``) receive messages without deleting them,
so SQS stays the durable inbox: a received message is only hidden for the queue's visibility timeout and is
delivered again unless ``acknowledge`` deletes it first. The replication DAG's ``plan`` reads its run's
messages from the asset events (``include.airflow.assets.queue_messages``) and acknowledges them only after
it has recorded every request they carry as claims in the status table. A message the triggerer received
but never turned into an asset event (it was killed), or whose run failed before recording it, therefore
comes back; one that comes back after all makes another run, whose claims copy nothing twice. Delivery is
at least once, replication exactly once per (version, region). ``replica_repair`` acknowledges serving's
reports the same way, once it has recorded each reported replica ``corrupt``.
"""

from __future__ import annotations

import logging

from include.catalogue import Catalogue

log = logging.getLogger(__name__)

DELETE_BATCH = 10  # DeleteMessageBatch takes at most 10 entries


def acknowledge(catalogue: Catalogue, queue_url: str, messages: list[dict]) -> int:
    """Delete ``messages`` from one of the catalogue's queues by receipt handle; return how many were deleted.

    A message that could not be deleted (SQS unreachable, a receipt handle superseded by a later reception)
    is logged, not raised: it is delivered again after the visibility timeout, and the run it starts finds
    its versions already claimed.
    """
    if not messages:
        return 0
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook
    from botocore.exceptions import BotoCoreError, ClientError

    client = SqsHook(aws_conn_id=catalogue.events.connection).conn
    deleted = 0
    for start in range(0, len(messages), DELETE_BATCH):
        batch = messages[start : start + DELETE_BATCH]
        entries = [{"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]} for i, message in enumerate(batch)]
        try:
            response = client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not acknowledge %d event(s), delivered again later: %s", len(batch), exc)
            continue
        deleted += len(response.get("Successful", []))
        for failure in response.get("Failed", []):
            message = batch[int(failure["Id"])]
            log.warning("event %s not acknowledged, delivered again later: %s %s", message["MessageId"],
                        failure.get("Code"), failure.get("Message"))  # fmt: skip
    log.info("acknowledged %d of %d event(s)", deleted, len(messages))
    return deleted
