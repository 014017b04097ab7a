"""Settings from a config file and the environment: the environment wins; mistakes name the key."""

import pytest

from app.features.spec import default_spec
from app.settings import Settings, SettingsError


def write(tmp_path, text: str) -> str:
    path = tmp_path / "streamlearn.toml"
    path.write_text(text)
    return str(path)


def test_every_setting_can_come_from_the_file_and_the_environment_overrides_it(tmp_path):
    path = write(
        tmp_path,
        'id = "fraud"\npartitions = 4\nwindow = 60\nwindow_expires = 7200\nrekey = true\n'
        'datadir = "/tmp/x"\nsasl_username = "u"\n',
    )
    s = Settings.load({"STREAMLEARN_CONFIG": path, "STREAMLEARN_PARTITIONS": "2"})
    assert (s.id, s.partitions, s.window, s.rekey, str(s.datadir)) == (
        "fraud",
        2,
        60.0,
        True,
        "/tmp/x",
    )
    assert s.sasl_username == "u"


def test_streamlearn_toml_in_the_working_directory_is_read_when_no_file_is_named(
    tmp_path, monkeypatch
):
    write(tmp_path, "partitions = 3\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.load({}).partitions == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partitons = 4\n", "unknown setting 'partitons'"),
        ('partitions = "4"\n', "partitions = '4': expected an integer"),
        ("window = true\n", "window = True: expected a number"),
        ("rekey = 1\n", "rekey = 1: expected true or false"),
        ("sasl_password = 7\n", "sasl_password = (hidden): expected a string"),
        ("checkpoint_secret = 987654321\n", "checkpoint_secret = (hidden): expected a string"),
        ("[events]\ntopics = 'x'\n", "[events]: unknown key 'topics'"),
        ("[events]\ntime_format = 'unix'\n", "[events].time_format must be one of"),
        ("[events]\nfeatures = []\n", "[events].features is empty"),
        ("[events]\nid = 'a..b'\n", "[events].id must be a dotted path"),
        ("[labels]\nid = 'event'\n", "[labels].label is required"),
        ("events = 3\n", "events must be a table"),
        ("partitions = \n", "not valid TOML"),
        ("[windows]\nw = { kind = 'weekly' }\n", "[windows] w: unknown kind 'weekly'"),
        ("[windows]\nw = { kind = 'sliding', size = 0 }\n", "[windows] w: size must be a positive"),
        (
            "[[aggregate]]\nfields = ['a']\naggregations = ['median']\nwindows = []\n",
            "[[aggregate]] #1: unknown aggregation 'median'",
        ),
        (
            "[windows]\nw = { kind = 'lifetime' }\n[[aggregate]]\nfields = []\n"
            "aggregations = ['sum']\nwindows = ['w']\n",
            "[[aggregate]] #1: fields must be a non-empty list",
        ),
        (
            "[windows]\nw = { kind = 'lifetime' }\n[[aggregate]]\nfields = ['a']\n"
            "aggregations = ['sum']\nwindows = ['w2']\n",
            "[[aggregate]] #1: unknown window 'w2'",
        ),
        (
            "[windows]\nday = { kind = 'tumbling', size = 86400 }\n[[aggregate]]\n"
            "fields = ['a']\naggregations = ['max']\nwindows = ['day']\n",
            "[windows] day: size 86400 s is longer than STREAMLEARN_WINDOW_EXPIRES",
        ),
    ],
)
def test_a_mistake_in_the_file_is_a_start_up_error_naming_the_key_and_the_file(
    tmp_path, text, message
):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as error:
        Settings.load({"STREAMLEARN_CONFIG": path})
    assert message in str(error.value) and path in str(error.value)


def test_a_missing_config_file_is_a_start_up_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.load({"STREAMLEARN_CONFIG": str(tmp_path / "nope.toml")})


def test_values_from_the_file_are_checked_like_the_environment_s(tmp_path):
    path = write(tmp_path, "partitions = 0\n")
    with pytest.raises(SettingsError, match="PARTITIONS must be >= 1"):
        Settings.load({"STREAMLEARN_CONFIG": path})


def test_declared_features_are_read_from_the_file_and_bounded_by_the_environment(tmp_path):
    path = write(
        tmp_path,
        "[windows]\nday = { kind = 'tumbling', size = 86400 }\n[[aggregate]]\n"
        "fields = ['amount']\naggregations = ['max']\nwindows = ['day']\n",
    )
    s = Settings.load({"STREAMLEARN_CONFIG": path, "STREAMLEARN_WINDOW_EXPIRES": "90000"})
    assert s.feature_spec.names == ("amount_max_day",)
    assert s.recipe.spec.numeric is None  # the file's fields, not every numeric one
    # no [[aggregate]]: the default spec (the fixed recipe of earlier versions)
    assert Settings().feature_spec == default_spec(3600.0, 3600.0, 600.0)


def test_what_the_settings_derive_is_built_once():
    s = Settings(model="LogisticRegression; GaussianNB", window_features="amount")
    assert s.recipe is s.recipe and s.feature_spec is s.feature_spec
    assert s.specs is s.specs and [spec.name for spec in s.specs] == [
        "LogisticRegression",
        "GaussianNB",
    ]
    assert s.event_mapping is None and s.label_mapping is None


def test_models_that_cannot_be_built_name_the_setting():
    with pytest.raises(SettingsError, match=r"STREAMLEARN_MODEL='Nope': unknown River estimator"):
        Settings(model="Nope").specs  # noqa: B018


@pytest.mark.parametrize(
    ("url", "advertised"),
    [
        ("", "http://127.0.0.1:6066"),
        ("http://10.0.0.5:6066", "http://10.0.0.5:6066"),
        ("https://worker-1.example:8443/", "https://worker-1.example:8443"),
        ("http://[fd00::5]:6066", "http://[fd00::5]:6066"),
    ],
)
def test_the_web_url_is_the_setting_or_the_bind_address(url, advertised):
    assert Settings.from_env({"STREAMLEARN_WEB_URL": url}).web_url_value == advertised


@pytest.mark.parametrize(
    "url", ["10.0.0.5:6066", "localhost:6066", "ftp://h/", "http://", "http://h:x"]
)
def test_a_web_url_without_a_scheme_or_a_host_is_refused_naming_it(url):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"STREAMLEARN_WEB_URL": url})
    assert str(refused.value).startswith(f"STREAMLEARN_WEB_URL={url!r}: ")
    assert "\n" not in str(refused.value)
