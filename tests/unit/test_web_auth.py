"""STREAMLEARN_WEB_TOKEN, no broker: a worker built with a token refuses every path of its web
port without it (401, a JSON reason, ``WWW-Authenticate: Bearer``) and answers with it;
``POST /predict/`` answers with it and forwards it to the worker that holds a shard; the token
is in no log, response or page. Without a token the port answers as it always did.

The servers are aiohttp's test servers around the very aiohttp application Faust would serve
(``app.web.web_app``, its routes and middlewares applied by ``init_server``)."""

import logging
import re
import socket

import faust
import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from app.config import Config
from app.contracts.intake import Intake
from app.faust_app import settings_warnings
from app.settings import Settings, SettingsError
from app.web import auth, predict
from app.web.views import DASHBOARD
from app.worker import build

TOKEN = "tok-3f9a1c-not-in-any-log"
WRONG = "tok-3f9a1c-not-the-one"
#: a value for each path parameter of the routes
PARAMS = {"name": "LogisticRegression", "key": "card-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_app(tmp_path, name: str, **settings) -> faust.App:
    """A real worker's Faust app (app/worker.py), its web routes set up, nothing started."""
    settings = {"checkpoint_secret": "unit", **settings}
    worker = build(Settings(id=name, store="memory://", datadir=tmp_path, **settings))
    worker.app.web.init_server()
    return worker.app


def paths(app: faust.App) -> list[tuple[str, str]]:
    """Every (method, path) the web server answers, path parameters filled in."""
    out = []
    for resource in app.web.web_app.router.resources():
        path = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], resource.canonical)
        out += [(route.method, path) for route in resource if route.method != "HEAD"]
    return sorted(out)


@pytest.fixture
async def client(tmp_path):
    app = worker_app(tmp_path, "unit-web-token", web_token=TOKEN)
    async with TestClient(TestServer(app.web.web_app)) as client:
        client.faust_app = app
        yield client


async def test_every_path_refuses_a_request_without_the_token_or_with_a_wrong_one(client, caplog):
    caplog.set_level(logging.DEBUG)
    every = paths(client.faust_app)
    assert ("POST", "/predict/") in every and ("GET", "/dashboard/") in every
    assert ("GET", "/router/") in every and ("GET", "/table/") in every  # Faust's own pages
    assert len(every) == 18
    for method, path in [*every, ("GET", "/no-such-page/")]:
        for given, reason, challenge in [
            ({}, "this worker needs Authorization: Bearer <token>", 'Bearer realm="streamlearn"'),
            (
                {"Authorization": f"Bearer {WRONG}"},
                "wrong token",
                'Bearer realm="streamlearn", error="invalid_token"',
            ),
            ({"Authorization": f"Basic {TOKEN}"}, "this worker needs", "Bearer realm"),
            ({"Authorization": f"Bearer {TOKEN}x"}, "wrong token", "Bearer realm"),
        ]:
            response = await client.request(method, path, headers=given, data=b"{}")
            body = await response.read()
            assert response.status == 401, (method, path, given)
            assert response.headers["WWW-Authenticate"].startswith(challenge)
            assert response.content_type == "application/json"
            assert orjson.loads(body)["error"].startswith(reason)
            assert TOKEN.encode() not in body and WRONG.encode() not in body
    assert TOKEN not in caplog.text and WRONG not in caplog.text


async def test_the_token_opens_the_json_views_the_pages_and_predict(client, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    bodies = []
    for path, content_type in [
        ("/stats/", "application/json"),
        ("/models/", "application/json"),
        ("/model-events/", "application/json"),
        ("/metrics", "text/plain"),
        ("/dashboard/", "text/html"),
    ]:
        response = await client.get(path, headers=bearer)
        assert (response.status, response.content_type) == (200, content_type), path
        bodies.append(await response.read())
    assert bodies[-1] == DASHBOARD
    stats = orjson.loads(bodies[0])
    assert stats["warnings"] == []  # (loopback, a secret set: nothing to warn of)
    # the scheme in any case; /predict/ reads the event (no shard is held here: 503, not 401)
    response = await client.post(
        "/predict/", headers={"Authorization": f"bearer {TOKEN}"}, data=b'{"id": "a"}'
    )
    assert response.status == 400 and "missing field" in (await response.json())["error"]
    response = await client.post(
        "/predict/", headers=bearer, data=b'{"id": "a", "key": "k", "x": {"v": 1}}'
    )
    assert response.status == 503 and "shard 0 is not served now" in await response.text()
    out = capsys.readouterr()
    everything = b"".join(bodies).decode() + caplog.text + out.out + out.err
    assert TOKEN not in everything


async def test_a_browser_asking_for_a_page_gets_the_token_form(client):
    response = await client.get("/dashboard/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status == 401 and response.content_type == "text/html"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    page = await response.read()
    assert page == auth.GATE and TOKEN.encode() not in page
    # the form keeps the token where the dashboard reads it from
    assert f'"{auth.STORAGE_KEY}"'.encode() in auth.GATE
    assert f'sessionStorage.getItem("{auth.STORAGE_KEY}")'.encode() in DASHBOARD


async def test_without_a_token_every_page_answers_as_before(tmp_path):
    app = worker_app(tmp_path, "unit-web-open")
    assert app.web.web_app.middlewares == []  # nothing added
    async with TestClient(TestServer(app.web.web_app)) as client:
        for path in ("/stats/", "/models/", "/dashboard/", "/metrics"):
            assert (await client.get(path)).status == 200, path
        assert (await client.get("/", allow_redirects=False)).status == 302


class OneShard:
    """A worker holding shard ``mine`` of two (key ``"a"``: shard 0, any other: 1); the other
    shard's owner is ``other``."""

    def __init__(self, mine: int, other: str) -> None:
        self.mine, self.other = mine, other

    def shard_of(self, event: dict) -> int:
        return 0 if event["key"] == "a" else 1

    def ready(self, shard: int) -> bool:
        return shard == self.mine

    def owner(self, shard: int) -> str | None:
        return self.other

    def score(self, event: dict, all_models: bool) -> dict:
        return {"id": event["id"], "key": event["key"], "y_pred": self.mine == 1}


def predict_server(name: str, port: int, other: str, mine: int, token: str) -> TestServer:
    """A Faust app with ``POST /predict/`` only, advertised at its own port, guarded by
    ``token``; an aiohttp test server for it on that port."""
    app = faust.App(name, store="memory://", canonical_url=f"http://127.0.0.1:{port}")
    intake = Intake(None, None, 3600.0, lambda y: None)
    predict.install(app, OneShard(mine, other), intake, 10, 4096, token)
    auth.install(app, token)
    app.web.init_server()
    return TestServer(app.web.web_app, host="127.0.0.1", port=port)


async def test_predict_forwards_the_token_to_the_worker_that_holds_the_shard(caplog):
    caplog.set_level(logging.DEBUG)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    first = predict_server("unit-predict-0", ports[0], urls[1], 0, TOKEN)
    second = predict_server("unit-predict-1", ports[1], urls[0], 1, TOKEN)
    events = orjson.dumps([{"id": "e0", "key": "a", "x": {}}, {"id": "e1", "key": "b", "x": {}}])
    async with first, second, ClientSession() as session:
        async with session.post(f"{urls[0]}/predict/", data=events) as response:
            assert response.status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(f"{urls[0]}/predict/", data=events, headers=bearer) as response:
            assert response.status == 200
            assert response.headers[predict.WORKER] == ", ".join(sorted(urls))
            assert await response.json() == [
                {"id": "e0", "key": "a", "y_pred": False, "worker": urls[0]},
                {"id": "e1", "key": "b", "y_pred": True, "worker": urls[1]},
            ]
    assert TOKEN not in caplog.text


async def test_a_worker_with_another_token_is_named_not_reached():
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    first = predict_server("unit-predict-2", ports[0], urls[1], 0, TOKEN)
    second = predict_server("unit-predict-3", ports[1], urls[0], 1, WRONG)
    event = orjson.dumps({"id": "e1", "key": "b", "x": {}})
    async with first, second, ClientSession() as session:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(f"{urls[0]}/predict/", data=event, headers=bearer) as response:
            body = await response.json()
    assert response.status == 503
    assert body == {
        "error": f"{urls[1]} refused the web token: set the same STREAMLEARN_WEB_TOKEN on "
        "every worker"
    }


def test_the_token_is_in_no_repr_and_no_settings_error(tmp_path):
    settings = Settings.from_env({"STREAMLEARN_WEB_TOKEN": TOKEN})
    config = Config.build(settings)
    assert config.web_token == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in repr(config)
    assert "(hidden)" in settings.named("web_token")
    toml = tmp_path / "s.toml"
    toml.write_text("web_token = 7\n")
    with pytest.raises(SettingsError) as refused:
        Settings.load({"STREAMLEARN_CONFIG": str(toml)})
    assert str(refused.value) == f"config file {toml}: web_token = (hidden): expected a string"


def test_the_token_file_gives_its_first_line(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\nsecond line\n")
    config = Config.build(Settings.from_env({"STREAMLEARN_WEB_TOKEN_FILE": str(path)}))
    assert config.web_token == TOKEN
    assert TOKEN not in repr(config)
    path.write_text("\n")
    with pytest.raises(SettingsError, match="its first line is empty"):
        Config.build(Settings.from_env({"STREAMLEARN_WEB_TOKEN_FILE": str(path)}))


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        (
            {"STREAMLEARN_WEB_TOKEN": TOKEN, "STREAMLEARN_WEB_TOKEN_FILE": "/etc/hostname"},
            "STREAMLEARN_WEB_TOKEN and STREAMLEARN_WEB_TOKEN_FILE are both set: set one of them",
        ),
        (
            {"STREAMLEARN_WEB_TOKEN_FILE": "/nonexistent/token"},
            "STREAMLEARN_WEB_TOKEN_FILE='/nonexistent/token': no such file",
        ),
    ],
)
def test_token_settings_that_cannot_work_are_refused(environ, says):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    assert str(refused.value) == says and TOKEN not in str(refused.value)


def test_a_port_open_beyond_loopback_without_a_token_is_warned_about():
    wide = Settings(checkpoint_secret="s", web_bind="0.0.0.0")
    assert settings_warnings(Config.build(wide)) == [
        "STREAMLEARN_WEB_BIND=0.0.0.0 opens the web port beyond this machine without "
        "STREAMLEARN_WEB_TOKEN: whoever reaches it can read the tables and ask for scores. Set "
        "a token, or bind to 127.0.0.1 behind a proxy.",
        "STREAMLEARN_WEB_URL is not set: other workers are told to reach this one at "
        "http://0.0.0.0:6066, which is not an address of this machine for them. Set it to the "
        "URL they reach this worker at.",
    ]
    guarded = Settings(
        checkpoint_secret="s", web_bind="0.0.0.0", web_token=TOKEN, web_url="http://10.0.0.5:6066"
    )
    assert settings_warnings(Config.build(guarded)) == []
    assert settings_warnings(Config.build(Settings(checkpoint_secret="s", web_bind="::1"))) == []


@pytest.mark.parametrize(
    ("settings", "advertised"),
    [
        ({"web_bind": "0.0.0.0", "web_url": "http://10.0.0.5:6066/"}, "http://10.0.0.5:6066"),
        ({"web_bind": "127.0.0.2", "web_port": 7001}, "http://127.0.0.2:7001"),
    ],
)
def test_the_advertised_url_is_what_faust_tells_the_other_workers(tmp_path, settings, advertised):
    app = worker_app(tmp_path, "unit-web-url", **settings)
    assert str(app.conf.canonical_url) == advertised
    assert app.conf.web_bind == settings["web_bind"]  # (bound where it was told)
