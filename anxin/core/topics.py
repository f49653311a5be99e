"""Create the Kafka topics with the partition count from settings, before anyone uses them."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from anxin.core.settings import KafkaSettings


def topic_names(kafka: KafkaSettings) -> list[str]:
    return [
        kafka.readings_topic,
        kafka.rejected_topic,
        kafka.status_topic,
        kafka.alerts_topic,
        kafka.alert_events_topic,
        kafka.commands_topic,
        kafka.alert_updates_topic,
        kafka.state_topic,
        kafka.suspicions_topic,
    ]


def topic_configs(kafka: KafkaSettings, name: str) -> dict[str, str]:
    """The detector state snapshots keep only each bucket's latest (Apache Kafka compacts;
    Tansu accepts the setting and keeps everything)."""
    return {"cleanup.policy": "compact"} if name == kafka.state_topic else {}


async def ensure_topics(kafka: KafkaSettings, replication: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=kafka.partitions,
                replication_factor=replication,
                topic_configs=topic_configs(kafka, name),
            )
            for name in topic_names(kafka)
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
    finally:
        await admin.close()
