"""The simulator writes only what the contract allows."""

from records.contract import TOPICS as CONTRACT_TOPICS
from simulator.events import TOPIC_BASE, TOPIC_BASE_P, TOPICS


def test_ticket_topics_are_the_contracts():
    assert set(TOPICS) == set(CONTRACT_TOPICS)
    assert len(TOPIC_BASE) == len(TOPIC_BASE_P) and abs(sum(TOPIC_BASE_P) - 1) < 1e-12
