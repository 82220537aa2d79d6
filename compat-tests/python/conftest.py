"""Shared fixtures for the Python client compatibility tests.

The broker is started by compat-tests/python.sh, which passes its address in BOOTSTRAP;
every test makes its own uniquely named topics so tests stay independent of each other
and of the order they run in.
"""
import os
import uuid

import pytest

from helpers import Member


@pytest.fixture(scope="session")
def bootstrap():
    value = os.environ.get("BOOTSTRAP")
    if not value:
        pytest.exit("BOOTSTRAP is not set: run compat-tests/python.sh", returncode=2)
    return value


@pytest.fixture
def topic_name(request):
    """Factory for topic names that say which test made them (handy in broker logs)."""
    test = request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")

    def make(suffix=""):
        return f"{test}{suffix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def start_member(bootstrap):
    """Factory for consumer-group members in their own processes (helpers.Member):
    start_member(client, group, topic, name, protocol="classic"). Every member still
    running when the test ends is stopped, whatever the outcome."""
    started = []

    def start(client, group, topic, name, protocol="classic"):
        member = Member(client, bootstrap, group, topic, name, protocol)
        started.append(member)
        return member

    yield start
    for member in started:
        member.stop()
