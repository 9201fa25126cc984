"""Async clients against the threaded server, and one server per xdist worker."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest


@pytest.mark.asyncio
async def test_httpx_async_client_gets_a_replay_for_a_retried_key(idempotent_api):
    async with httpx.AsyncClient(base_url=idempotent_api.url) as client:
        headers = {"Idempotency-Key": "async-1"}
        first = await client.post("/v1/things", json={"a": 1}, headers=headers)
        second = await client.post("/v1/things", json={"a": 1}, headers=headers)
    assert first.status_code == 201
    assert second.content == first.content
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed()


@pytest.mark.asyncio
async def test_httpx_async_concurrent_duplicates_execute_once(idempotent_api):
    async with httpx.AsyncClient(base_url=idempotent_api.url) as client:
        responses = await asyncio.gather(
            *(
                client.post("/v1/things", json={"n": 1}, headers={"Idempotency-Key": "same"})
                for _ in range(20)
            )
        )
    assert {r.status_code for r in responses} <= {201, 409}
    idempotent_api.assert_exactly_once()


@pytest.mark.asyncio
async def test_aiohttp_survives_a_lost_response_with_one_side_effect(idempotent_api):
    idempotent_api.faults.drop_response()
    async with aiohttp.ClientSession() as session:
        for _attempt in range(3):
            try:
                async with session.post(
                    idempotent_api.url + "/v1/things",
                    json={"a": 1},
                    headers={"Idempotency-Key": "aio-1"},
                ) as response:
                    status = response.status
                    break
            except aiohttp.ClientError:
                continue
    assert status == 201
    idempotent_api.assert_exactly_once()
    assert [e.wire for e in idempotent_api.exchanges] == ["dropped", "response"]


@pytest.mark.asyncio
async def test_a_held_request_does_not_block_an_async_client_on_another_key(idempotent_api):
    hold = idempotent_api.faults.hold(key="slow")
    async with httpx.AsyncClient(base_url=idempotent_api.url, timeout=5) as client:
        held = asyncio.ensure_future(
            client.post("/v1/things", json={}, headers={"Idempotency-Key": "slow"})
        )
        await asyncio.to_thread(hold.wait_until_held)
        other = await client.post("/v1/things", json={}, headers={"Idempotency-Key": "fast"})
        assert other.status_code == 201
        hold.release()
        assert (await held).status_code == 201


def test_each_xdist_worker_gets_its_own_server(pytester):
    pytester.makepyfile(
        test_a="""
        import os, requests
        def test_a(idempotent_api, worker_id):
            with open(f"port-{worker_id}", "w") as f:
                f.write(str(idempotent_api.url))
            r = requests.post(idempotent_api.url + "/x", json={}, headers={"Idempotency-Key": "k"})
            assert r.status_code == 201
            assert len(idempotent_api.side_effects) == 1
        """,
        test_b="""
        import requests
        def test_b(idempotent_api, worker_id):
            with open(f"port-{worker_id}", "w") as f:
                f.write(str(idempotent_api.url))
            r = requests.post(idempotent_api.url + "/x", json={}, headers={"Idempotency-Key": "k"})
            assert r.status_code == 201
            assert len(idempotent_api.side_effects) == 1
        """,
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", timeout=120)
    result.assert_outcomes(passed=2)
    urls = {p.read_text() for p in pytester.path.glob("port-gw*")}
    assert len(urls) == 2, urls


def test_xdist_workers_share_the_seed_printed_in_the_controllers_header(pytester):
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.parametrize("n", range(4))
        def test_seed(idempotent_api, worker_id, n):
            with open(f"seed-{worker_id}-{n}", "w") as f:
                f.write(str(idempotent_api.faults.default_seed))
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", timeout=120)
    result.assert_outcomes(passed=4)
    header = next(line for line in result.outlines if "chaos seed" in line)
    printed = header.split("chaos seed ")[1].split(" ")[0]
    seeds = {p.read_text() for p in pytester.path.glob("seed-gw*")}
    workers = {p.name.split("-")[1] for p in pytester.path.glob("seed-gw*")}
    assert len(workers) == 2
    assert seeds == {printed}


def test_a_cancelled_async_wait_for_a_hold_does_not_stall_the_teardown(pytester):
    """``asyncio.wait_for(hold.wait_until_held_async(timeout=120), 0.2)`` is the usual guard; the
    wait used to run on a worker thread that the cancellation left waiting, and the event loop's
    teardown waited the whole 120 s for it."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.idempotency(assert_all_faults_fired=False)
        async def test_guarded(idempotent_api):
            hold = idempotent_api.faults.hold()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(hold.wait_until_held_async(timeout=120), 0.2)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--durations=0", timeout=60)
    result.assert_outcomes(passed=1)
    teardown = [line for line in result.outlines if "teardown" in line and "test_guarded" in line]
    assert all(float(line.split("s", 1)[0]) < 30 for line in teardown), teardown
