"""The schema registry's settings and the topics' formats (app/settings.py): values, defaults,
start-up errors naming the setting, and the auth's value nowhere."""

import pytest

from app.config import Config
from app.kafka.registry import Credentials, RegistryClient, RegistryError, credentials
from app.settings import Settings, SettingsError

URL = "http://127.0.0.1:8081/apis/ccompat/v7"
AUTH = "ml-team:Sup3r-s3cret-v4lue"
PASSWORD = "Sup3r-s3cret-v4lue"


def write(tmp_path, text: str, name: str = "streamlearn.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_defaults_are_json_and_no_registry():
    s = Settings.from_env({})
    assert (s.events_format, s.labels_format, s.predictions_format) == ("json", "json", "json")
    assert (s.schema_registry_url, s.schema_registry_timeout) == ("", 300.0)


def test_the_registry_settings_come_from_the_environment_and_formats_from_the_tables(tmp_path):
    ca = write(tmp_path, "-----BEGIN CERTIFICATE-----\n", "ca.pem")
    path = write(
        tmp_path,
        '[events]\nformat = "avro"\nid = "id"\n[labels]\nformat = "avro"\nid = "order"\n'
        'label = "fraud"\n',
    )
    s = Settings.load(
        {
            "STREAMLEARN_CONFIG": path,
            "STREAMLEARN_SCHEMA_REGISTRY_URL": "https://registry.example:8081",
            "STREAMLEARN_SCHEMA_REGISTRY_AUTH": AUTH,
            "STREAMLEARN_SCHEMA_REGISTRY_CAFILE": ca,
            "STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT": "20",
            "STREAMLEARN_PREDICTIONS_FORMAT": "avro",
        }
    )
    assert (s.events_format, s.labels_format, s.predictions_format) == ("avro", "avro", "avro")
    assert s.event_mapping.fields.format == "avro" and s.label_mapping.fields.format == "avro"
    assert (s.schema_registry_url, s.schema_registry_cafile) == (
        "https://registry.example:8081",
        ca,
    )
    assert (s.schema_registry_auth, s.schema_registry_timeout) == (AUTH, 20.0)
    assert credentials(s) == Credentials("ml-team", PASSWORD)


def test_the_auth_file_s_first_line_is_the_auth(tmp_path):
    auth_file = write(tmp_path, f"{AUTH}\nignored\n", "registry.auth")
    s = Settings.from_env(
        {
            "STREAMLEARN_SCHEMA_REGISTRY_URL": URL,
            "STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE": auth_file,
        }
    )
    assert credentials(s) == Credentials("ml-team", PASSWORD)
    assert credentials(Settings()) is None


def test_the_auth_s_value_appears_in_no_repr_str_error_or_client_text(tmp_path):
    s = Settings.from_env(
        {"STREAMLEARN_SCHEMA_REGISTRY_URL": URL, "STREAMLEARN_SCHEMA_REGISTRY_AUTH": AUTH}
    )
    config = Config.build(s)
    client = RegistryClient.configured(s)
    texts = [
        repr(s),
        str(s),
        repr(config),
        str(config),
        repr(client.auth),
        s.named("schema_registry_auth"),
    ]
    errors = []
    for environ in (
        {"STREAMLEARN_SCHEMA_REGISTRY_AUTH": AUTH},  # no URL
        {"STREAMLEARN_SCHEMA_REGISTRY_URL": URL, "STREAMLEARN_SCHEMA_REGISTRY_AUTH": PASSWORD},
        {
            "STREAMLEARN_SCHEMA_REGISTRY_URL": URL,
            "STREAMLEARN_SCHEMA_REGISTRY_AUTH": AUTH,
            "STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE": "/x",
        },
        {"STREAMLEARN_SCHEMA_REGISTRY_URL": f"https://{AUTH}@registry.example"},
    ):
        with pytest.raises(SettingsError) as error:
            Settings.from_env(environ)
        errors.append(str(error.value))
    path = write(tmp_path, "schema_registry_auth = 7\n")
    with pytest.raises(SettingsError) as error:
        Settings.load({"STREAMLEARN_CONFIG": path})
    errors.append(str(error.value))
    bad_file = write(tmp_path, PASSWORD + "\n", "bad.auth")
    with pytest.raises(RegistryError) as error:
        credentials(Settings(schema_registry_url=URL, schema_registry_auth_file=bad_file))
    errors.append(str(error.value))
    assert errors[0] == (
        "STREAMLEARN_SCHEMA_REGISTRY_AUTH is set but STREAMLEARN_SCHEMA_REGISTRY_URL is not"
    )
    assert (
        errors[1] == "STREAMLEARN_SCHEMA_REGISTRY_AUTH must be user:password (its value is hidden)"
    )
    assert errors[2].startswith("STREAMLEARN_SCHEMA_REGISTRY_AUTH and ")
    assert errors[3].startswith("STREAMLEARN_SCHEMA_REGISTRY_URL holds credentials")
    assert "schema_registry_auth = (hidden): expected a string" in errors[4]
    assert errors[5].endswith("must hold user:password (its value is hidden)")
    assert s.named("schema_registry_auth") == "STREAMLEARN_SCHEMA_REGISTRY_AUTH=(hidden)"
    for text in texts + errors:
        assert PASSWORD not in text, text


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"STREAMLEARN_SCHEMA_REGISTRY_URL": "registry:8081"},
            "STREAMLEARN_SCHEMA_REGISTRY_URL='registry:8081': expected http://host:port[/path] or "
            "https://...",
        ),
        (
            {"STREAMLEARN_SCHEMA_REGISTRY_CAFILE": "/nonexistent/ca.pem"},
            "STREAMLEARN_SCHEMA_REGISTRY_CAFILE is set but STREAMLEARN_SCHEMA_REGISTRY_URL is not",
        ),
        (
            {
                "STREAMLEARN_SCHEMA_REGISTRY_URL": "https://r.example",
                "STREAMLEARN_SCHEMA_REGISTRY_CAFILE": "/nonexistent/ca.pem",
            },
            "STREAMLEARN_SCHEMA_REGISTRY_CAFILE='/nonexistent/ca.pem': no such file",
        ),
        (
            {
                "STREAMLEARN_SCHEMA_REGISTRY_URL": URL,
                "STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE": "/nonexistent/auth",
            },
            "STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE='/nonexistent/auth': no such file",
        ),
        (
            {"STREAMLEARN_SCHEMA_REGISTRY_URL": URL, "STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT": "0"},
            "STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT must be > 0",
        ),
        (
            {"STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT": "soon"},
            "STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT='soon': expected float",
        ),
        (
            {"STREAMLEARN_PREDICTIONS_FORMAT": "xml"},
            "STREAMLEARN_PREDICTIONS_FORMAT='xml': expected one of json, avro",
        ),
        (
            {"STREAMLEARN_PREDICTIONS_FORMAT": "avro"},
            "STREAMLEARN_PREDICTIONS_FORMAT=avro needs STREAMLEARN_SCHEMA_REGISTRY_URL (the "
            "schema registry's Confluent API)",
        ),
    ],
)
def test_registry_settings_that_cannot_work_are_start_up_errors_naming_them(environ, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert str(error.value) == message


def test_a_cafile_needs_https(tmp_path):
    ca = write(tmp_path, "x", "ca.pem")
    with pytest.raises(SettingsError) as error:
        Settings.from_env(
            {"STREAMLEARN_SCHEMA_REGISTRY_URL": URL, "STREAMLEARN_SCHEMA_REGISTRY_CAFILE": ca}
        )
    assert str(error.value) == (
        "STREAMLEARN_SCHEMA_REGISTRY_CAFILE is set but STREAMLEARN_SCHEMA_REGISTRY_URL is not https"
    )


@pytest.mark.parametrize("table", ["events", "labels"])
def test_avro_without_a_registry_is_a_one_line_start_up_error_naming_both(tmp_path, table):
    label = '\nid = "order"\nlabel = "fraud"' if table == "labels" else ""
    path = write(tmp_path, f'[{table}]\nformat = "avro"{label}\n')
    with pytest.raises(SettingsError) as error:
        Settings.load({"STREAMLEARN_CONFIG": path})
    assert str(error.value) == (
        f"config file {path}: [{table}] format = 'avro' needs STREAMLEARN_SCHEMA_REGISTRY_URL "
        "(the schema registry's Confluent API)"
    )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("table", ["events", "labels"])
def test_an_unknown_format_is_a_start_up_error_naming_it(tmp_path, table):
    label = '\nid = "order"\nlabel = "fraud"' if table == "labels" else ""
    path = write(tmp_path, f'[{table}]\nformat = "protobuf"{label}\n')
    with pytest.raises(SettingsError) as error:
        Settings.load({"STREAMLEARN_CONFIG": path, "STREAMLEARN_SCHEMA_REGISTRY_URL": URL})
    assert str(error.value) == (
        f"config file {path}: [{table}].format must be one of json, avro, got 'protobuf'"
    )
