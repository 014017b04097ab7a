"""Settings from a config file and the environment: the environment wins; mistakes name the key."""

import pytest

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
        ("[events]\ntopics = 'x'\n", "[events]: unknown key 'topics'"),
        ("[events]\ntime_format = 'unix'\n", "[events].time_format must be one of"),
        ("[events]\nfeatures = []\n", "[events].features is empty"),
        ("[events]\nid = 'a..b'\n", "[events].id must be a dotted path"),
        ("[labels]\nid = 'event'\n", "[labels].label is required"),
        ("events = 3\n", "events must be a table"),
        ("partitions = \n", "not valid TOML"),
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
