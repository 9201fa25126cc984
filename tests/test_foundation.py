"""The foundation, run as a user runs it: a test file using the ``idempotent_api`` fixture with
no conftest, executed by pytest (``pytester``), against the generic variant."""

from __future__ import annotations


def test_same_key_and_body_give_one_side_effect_and_a_byte_identical_replay(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_it(idempotent_api):
            url = idempotent_api.url + "/v1/things"
            r1 = requests.post(url, json={"a": 1}, headers={"Idempotency-Key": "k-1"})
            r2 = requests.post(url, json={"a": 1}, headers={"Idempotency-Key": "k-1"})
            assert r1.status_code == 201
            assert r2.status_code == r1.status_code
            assert r2.content == r1.content
            drop = {"date"}
            assert {k: v for k, v in r2.headers.items() if k.lower() not in drop} == {
                k: v for k, v in r1.headers.items() if k.lower() not in drop
            }
            assert len(idempotent_api.side_effects) == 1
            assert [e.decision for e in idempotent_api.exchanges] == ["new", "replayed"]
            assert idempotent_api.exchanges[1].replay_of == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_same_key_with_another_body_gets_the_conflict_answer_and_no_side_effect(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_it(idempotent_api):
            url = idempotent_api.url + "/v1/things"
            requests.post(url, json={"a": 1}, headers={"Idempotency-Key": "k-1"})
            r = requests.post(url, json={"a": 2}, headers={"Idempotency-Key": "k-1"})
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "idempotency_key_reused"
            assert len(idempotent_api.side_effects) == 1
            assert idempotent_api.exchanges[1].decision == "conflict"
            assert idempotent_api.exchanges[1].side_effects == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_key_past_its_ttl_executes_again_and_one_short_of_it_replays(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_it(idempotent_api):
            url = idempotent_api.url + "/v1/things"
            post = lambda: requests.post(url, json={"a": 1}, headers={"Idempotency-Key": "k"})
            first = post().json()["id"]
            idempotent_api.clock.advance(hours=23, minutes=59)
            assert post().json()["id"] == first
            idempotent_api.clock.advance(minutes=1)
            assert post().json()["id"] != first
            assert [e.decision for e in idempotent_api.exchanges] == ["new", "replayed", "new"]
            assert len(idempotent_api.side_effects) == 2
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_64_threads_with_one_key_execute_exactly_once_in_each_of_200_rounds(pytester):
    pytester.makepyfile(
        """
        import threading
        import requests

        THREADS, ROUNDS = 64, 200

        def test_it(idempotent_api):
            url = idempotent_api.url + "/v1/things"
            sessions = [requests.Session() for _ in range(THREADS)]
            for rnd in range(ROUNDS):
                barrier = threading.Barrier(THREADS)
                statuses = []
                def send(session):
                    barrier.wait()
                    r = session.post(url, json={"round": rnd},
                                     headers={"Idempotency-Key": f"key-{rnd}"})
                    statuses.append(r.status_code)
                threads = [threading.Thread(target=send, args=(s,)) for s in sessions]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                effects = [s for s in idempotent_api.side_effects if s.key == f"key-{rnd}"]
                assert len(effects) == 1, (rnd, len(effects))
                decisions = [e.decision for e in idempotent_api.journal.filter(key=f"key-{rnd}")]
                assert decisions.count("new") == 1
                assert set(decisions) <= {"new", "replayed", "in_flight"}
                assert sorted(set(statuses)) in ([201], [201, 409])
            assert len(idempotent_api.side_effects) == ROUNDS
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_each_test_gets_a_freshly_reset_fake_on_one_session_server(pytester):
    pytester.makepyfile(
        """
        import requests
        seen = []

        def test_one(idempotent_api):
            seen.append(idempotent_api.url)
            idempotent_api.clock.advance(days=3)
            idempotent_api.faults.drop_response(times=None)
            requests.post(idempotent_api.url + "/x", json={}, headers={"Idempotency-Key": "k"})
            idempotent_api.faults.release_all()

        def test_two(idempotent_api):
            seen.append(idempotent_api.url)
            assert idempotent_api.exchanges == []
            assert idempotent_api.side_effects == []
            assert abs(idempotent_api.clock.offset) < 1
            r = requests.post(idempotent_api.url + "/x", json={}, headers={"Idempotency-Key": "k"})
            assert r.status_code == 201
            assert seen[0] == seen[1]
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    # test_one's drop fault fires (so no unfired-fault failure) and the request errors out.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*requests.exceptions.ConnectionError*"])


def test_the_library_imports_without_pytest(pytester):
    pytester.makepyfile(
        check="""
        import sys
        import pytest_idempotency
        from pytest_idempotency import App, IdempotencyServer, get_variant
        assert "pytest" not in sys.modules, "the library must import without pytest"
        app = App(get_variant("generic"))
        with IdempotencyServer(app) as server:
            import urllib.request
            req = urllib.request.Request(server.url + "/things", data=b"{}", method="POST",
                                         headers={"Idempotency-Key": "k",
                                                  "Content-Type": "application/json"})
            assert urllib.request.urlopen(req).status == 201
        print("ok")
        """
    )
    result = pytester.run(__import__("sys").executable, "check.py")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["ok"])


def test_http11_connections_stay_alive_across_requests(idempotent_api):
    import http.client

    host, port = idempotent_api.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        answers = []
        sockets = []
        for n in range(3):
            conn.request(
                "POST",
                "/v1/things",
                body=b'{"n": %d}' % n,
                headers={"Idempotency-Key": f"k-{n}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            answers.append((response.status, response.will_close, response.getheader("Connection")))
            response.read()
            sockets.append(conn.sock)
    finally:
        conn.close()
    assert answers == [(201, False, None)] * 3
    assert sockets[0] is not None
    assert sockets[0] is sockets[1] is sockets[2]  # one TCP connection served all three
