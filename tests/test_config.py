"""``Settings.load``: built-in defaults < the TOML file < ``DSMF_*`` environment < overrides.

Every refusal is a ``ConfigError`` (code ``Server.Configuration``) whose message names the key
and what is wrong with it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings

NO_ENV: dict[str, str] = {}


def write_toml(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(message: str, **values: object) -> ConfigError:
    """``Settings.from_mapping(values)`` is refused with exactly ``message``."""
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping(values)
    assert str(info.value) == message
    assert info.value.code == "Server.Configuration"
    return info.value


# -- defaults and the file ----------------------------------------------------------------------


def test_defaults_without_file_or_environment() -> None:
    settings = Settings.load(None, environ=NO_ENV)
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.require_crl is True
    assert settings.trust_anchors == ()
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("gateway.db")


def test_values_come_from_the_toml_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
host = "192.0.2.10"
port = 9443
database_url = "postgresql+psycopg://gw@db.example/dsmf"
population_url = "http://registry.example/population"
upstream_timeout_seconds = 7
require_crl = false
trust_anchors = ["ca/root.pem", "ca/issuing.pem"]
trusted_systems = ["TINAZ-1500000001"]
max_page_size = 50
signing_key_file = "keys/gateway.p12"
""")
    settings = Settings.load(path, environ=NO_ENV)
    assert settings.host == "192.0.2.10"
    assert settings.port == 9443
    assert settings.effective_database_url == "postgresql+psycopg://gw@db.example/dsmf"
    assert settings.population_url == "http://registry.example/population"
    assert settings.upstream_timeout_seconds == 7.0
    assert isinstance(settings.upstream_timeout_seconds, float)
    assert settings.require_crl is False
    assert settings.trust_anchors == (Path("ca/root.pem"), Path("ca/issuing.pem"))
    assert settings.trusted_systems == ("TINAZ-1500000001",)
    assert settings.max_page_size == 50
    assert settings.signing_key_file == Path("keys/gateway.p12")
    assert settings.signing_cert_file is None
    # Untouched keys keep their defaults.
    assert settings.min_rsa_bits == 2048


def test_file_named_by_dsmf_config(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9001\n")
    settings = Settings.load(None, environ={"DSMF_CONFIG": str(path)})
    assert settings.port == 9001


def test_explicit_file_wins_over_dsmf_config(tmp_path: Path) -> None:
    explicit = write_toml(tmp_path, "port = 9002\n", "explicit.toml")
    other = write_toml(tmp_path, "port = 9003\n", "other.toml")
    assert Settings.load(explicit, environ={"DSMF_CONFIG": str(other)}).port == 9002


# -- the environment ----------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9443\nhost = "192.0.2.10"\nmax_page_size = 50\n')
    settings = Settings.load(path, environ={"DSMF_PORT": "8181", "DSMF_MAX_PAGE_SIZE": "75"})
    assert settings.port == 8181
    assert settings.max_page_size == 75
    assert settings.host == "192.0.2.10"  # not in the environment: the file's value


def test_keyword_overrides_win_over_the_environment_and_none_is_ignored(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9443\n")
    settings = Settings.load(path, environ={"DSMF_PORT": "8181"}, port=8282, host=None)
    assert settings.port == 8282
    assert settings.host == "127.0.0.1"


def test_environment_variables_are_upper_case_dsmf_names() -> None:
    # Lower case or without the prefix: not ours, not read.
    settings = Settings.load(None, environ={"dsmf_port": "1234", "PORT": "1235"})
    assert settings.port == 8080


def test_tuple_settings_from_a_comma_separated_variable() -> None:
    settings = Settings.load(None, environ={
        "DSMF_TRUST_ANCHORS": "ca/root.pem, ca/issuing.pem",
        "DSMF_CRLS": "crl/issuing.crl.pem",
        "DSMF_TRUSTED_SYSTEMS": "TINAZ-1500000001,TINAZ-1500000002,",
        "DSMF_UNSIGNED_OPERATIONS": "listMethods",
    })
    assert settings.trust_anchors == (Path("ca/root.pem"), Path("ca/issuing.pem"))
    assert settings.crls == (Path("crl/issuing.crl.pem"),)
    assert settings.trusted_systems == ("TINAZ-1500000001", "TINAZ-1500000002")
    assert settings.unsigned_operations == ("listMethods",)


def test_an_empty_variable_empties_a_tuple_setting() -> None:
    settings = Settings.load(None, environ={"DSMF_UNSIGNED_OPERATIONS": ""})
    assert settings.unsigned_operations == ()


def test_blank_items_of_a_comma_separated_list_are_dropped() -> None:
    # "a, ,b" is a stray comma, not a third trust anchor named "" (which is the current dir).
    settings = Settings.load(None, environ={"DSMF_TRUST_ANCHORS": "a.pem, ,b.pem"})
    assert settings.trust_anchors == (Path("a.pem"), Path("b.pem"))


@pytest.mark.parametrize(("text", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), (" on ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("off", False),
])
def test_booleans_from_the_environment(text: str, expected: bool) -> None:
    settings = Settings.load(None, environ={"DSMF_REQUIRE_CRL": text, "DSMF_DEMO": text})
    assert settings.require_crl is expected
    assert settings.demo is expected


def test_booleans_from_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "require_crl = false\ndemo = true\n")
    settings = Settings.load(path, environ=NO_ENV)
    assert settings.require_crl is False
    assert settings.demo is True


def test_a_bad_boolean_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(None, environ={"DSMF_REQUIRE_CRL": "maybe"})
    assert str(info.value) == "bad value for 'require_crl': 'maybe' (expected a boolean)"


def test_optional_path_from_the_environment() -> None:
    settings = Settings.load(None, environ={
        "DSMF_SIGNING_KEY_FILE": "keys/gw.key", "DSMF_SIGNING_CERT_FILE": "keys/gw.pem",
    })
    assert settings.signing_key_file == Path("keys/gw.key")
    assert settings.signing_cert_file == Path("keys/gw.pem")
    assert Settings.load(None, environ={"DSMF_SIGNING_KEY_FILE": ""}).signing_key_file is None


# -- refusals ------------------------------------------------------------------------------------


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9443\nprot = 9444\ndatabase_uri = "x"\n')
    with pytest.raises(ConfigError) as info:
        Settings.load(path, environ=NO_ENV)
    assert str(info.value) == f"unknown configuration keys in {path}: database_uri, prot"
    assert info.value.code == "Server.Configuration"


def test_a_table_in_the_file_is_an_unknown_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[server]\nport = 9443\n")
    with pytest.raises(ConfigError) as info:
        Settings.load(path, environ=NO_ENV)
    assert str(info.value) == f"unknown configuration keys in {path}: server"


def test_unknown_key_in_a_mapping_is_named() -> None:
    refused("unknown configuration keys: colour", port=8080, colour="blue")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        Settings.load(path, environ=NO_ENV)
    assert str(info.value).startswith(f"cannot read configuration file {path}: ")
    assert "No such file" in str(info.value)


def test_malformed_toml_is_refused(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = = 1\n")
    with pytest.raises(ConfigError) as info:
        Settings.load(path, environ=NO_ENV)
    assert str(info.value).startswith(f"cannot read configuration file {path}: ")


def test_port_that_is_not_a_number() -> None:
    refused("bad value for 'port': 'abc' (invalid literal for int() with base 10: 'abc')",
            port="abc")


def test_port_from_the_environment_that_is_not_a_number() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(None, environ={"DSMF_PORT": "abc"})
    assert str(info.value).startswith("bad value for 'port': 'abc'")


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_port_out_of_range(port: int) -> None:
    refused("invalid configuration: port must be 1..65535", port=port)


def test_port_zero_from_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(None, environ={"DSMF_PORT": "0"})
    assert str(info.value) == "invalid configuration: port must be 1..65535"


def test_port_that_is_a_boolean_or_a_fraction_is_refused(tmp_path: Path) -> None:
    # TOML `port = true` must not become port 1, nor 8080.5 quietly port 8080.
    refused("bad value for 'port': True (expected a number, not a boolean)", port=True)
    refused("bad value for 'port': 8080.5 (expected a whole number)", port=8080.5)
    refused("bad value for 'upstream_timeout_seconds': False (expected a number, not a boolean)",
            upstream_timeout_seconds=False)
    with pytest.raises(ConfigError) as info:
        Settings.load(write_toml(tmp_path, "port = true\n"), environ=NO_ENV)
    assert str(info.value) == "bad value for 'port': True (expected a number, not a boolean)"
    # A whole float is still a whole number.
    assert Settings.from_mapping({"port": 8080.0}).port == 8080


def test_min_rsa_bits_below_the_profile() -> None:
    refused("invalid configuration: min_rsa_bits below 2048 is not allowed by the profile",
            min_rsa_bits=1024)
    assert Settings.from_mapping({"min_rsa_bits": 3072}).min_rsa_bits == 3072


@pytest.mark.parametrize("size", [0, 1001])
def test_max_page_size_out_of_range(size: int) -> None:
    refused("invalid configuration: max_page_size must be 1..1000", max_page_size=size)


@pytest.mark.parametrize("size", [0, 201])
def test_database_pool_size_out_of_range(size: int) -> None:
    refused("invalid configuration: database_pool_size must be 1..200", database_pool_size=size)
    assert Settings.from_mapping({"database_pool_size": 200}).database_pool_size == 200


# Empty, a letter, Arabic-Indic digits and a superscript: str.isdigit() takes the last two, which
# PostgreSQL's insert cannot cast (every issue would fail) and SQLite would write into SSNs.
@pytest.mark.parametrize("prefix", ["", "1a", "\u0660\u0667", "\u00b2"])
def test_ssn_prefix_must_be_ascii_digits(prefix: str) -> None:
    refused("invalid configuration: ssn_prefix must be digits 0-9 and ssn_serial_digits 4..18",
            ssn_prefix=prefix)
    assert Settings.from_mapping({"ssn_prefix": "07"}).ssn_prefix == "07"


def test_an_ssn_longer_than_the_contract_allows_is_refused() -> None:
    # The contract's Ssn is [0-9]{6,20}: prefix, serial digits and the check digit.
    refused("invalid configuration: an SSN (ssn_prefix, ssn_serial_digits and a check digit)"
            " is at most 20 digits", ssn_prefix="27", ssn_serial_digits=18)
    assert Settings.from_mapping({"ssn_prefix": "1", "ssn_serial_digits": 18}).ssn_prefix == "1"


def test_every_problem_is_listed_at_once() -> None:
    refused("invalid configuration: port must be 1..65535; "
            "min_rsa_bits below 2048 is not allowed by the profile; "
            "max_page_size must be 1..1000",
            port=0, min_rsa_bits=1024, max_page_size=0)


def test_bad_value_in_the_file_names_the_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'max_page_size = "many"\n')
    with pytest.raises(ConfigError) as info:
        Settings.load(path, environ=NO_ENV)
    assert str(info.value).startswith("bad value for 'max_page_size': 'many' (")


def test_key_file_without_certificate_is_refused_but_a_p12_stands_alone() -> None:
    refused("invalid configuration: signing_key_file and signing_cert_file go together "
            "(or a .p12)", signing_key_file="keys/gw.key")
    assert Settings.from_mapping({"signing_key_file": "keys/gw.p12"}).signing_cert_file is None


def test_pkcs11_module_needs_token_and_key_labels() -> None:
    refused("invalid configuration: pkcs11_module needs pkcs11_token_label and pkcs11_key_label",
            pkcs11_module="/usr/lib/softhsm/libsofthsm2.so", pkcs11_token_label="gw")


def test_replace_does_not_validate_but_validate_refuses() -> None:
    settings = Settings().replace(port=0)
    with pytest.raises(ConfigError) as info:
        settings.validate()
    assert str(info.value) == "invalid configuration: port must be 1..65535"


def test_registry_scale_settings_and_their_bounds() -> None:
    settings = Settings.load(None, environ={"DSMF_SEARCH_COUNT_LIMIT": "500",
                                            "DSMF_OPTIMIZE_EVERY_SECONDS": "0",
                                            "DSMF_SIMULATOR_ANY_FIN": "yes"})
    assert (settings.search_count_limit, settings.optimize_every_seconds) == (500, 0.0)
    assert settings.simulator_any_fin is True
    assert Settings().search_count_limit == 10_000 and Settings().optimize_every_seconds == 3600
    refused("invalid configuration: search_count_limit must be 1..10000000",
            search_count_limit=0)
    refused("invalid configuration: optimize_every_seconds must be >= 0 (0: never)",
            optimize_every_seconds=-1)


def test_sqlite_checkpoint_settings_and_their_bounds() -> None:
    settings = Settings.load(None, environ={"DSMF_SQLITE_CHECKPOINT_EVERY_SECONDS": "0",
                                            "DSMF_SQLITE_CHECKPOINT_FALLBACK_PAGES": "5000"})
    assert (settings.sqlite_checkpoint_every_seconds,
            settings.sqlite_checkpoint_fallback_pages) == (0.0, 5000)
    assert (Settings().sqlite_checkpoint_every_seconds,
            Settings().sqlite_checkpoint_fallback_pages) == (1.0, 10_000)
    for every in (-1, 0.01, 3601):
        refused("invalid configuration: sqlite_checkpoint_every_seconds must be 0.1..3600, or 0"
                " (in the commits)", sqlite_checkpoint_every_seconds=every)
    refused("invalid configuration: sqlite_checkpoint_fallback_pages must be 1000..1000000",
            sqlite_checkpoint_fallback_pages=999)


@pytest.mark.parametrize(("key", "value"), [
    ("revocation_sources", ()),
    ("revocation_sources", ("crl", "crl")),
    ("revocation_sources", ("crl", "ldap")),
    ("ocsp_cert_id_hash", "md5"),
    ("max_security_tokens", 0),
    ("max_certificate_path_length", 40),
    ("unknown_issuer_cache_seconds", -1),
])
def test_trust_hardening_settings_are_bounded(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({key: value})
    assert key in str(info.value)
    assert info.value.code == "Server.Configuration"


def test_simulator_ports_are_pinned_or_any_free_port() -> None:
    assert Settings().simulator_population_port == Settings().simulator_mobile_port == 0
    pinned = Settings.from_mapping({"simulator_population_port": "8081",
                                    "simulator_mobile_port": 8082})
    assert (pinned.simulator_population_port, pinned.simulator_mobile_port) == (8081, 8082)
    refused("invalid configuration: simulator_mobile_port must be 0..65535 (0: any free port)",
            simulator_mobile_port=70000)
