import pytest

from fikaso.config import check_sources, load_settings
from fikaso.errors import FikasoError

from .helpers import ROOT, shipped_section, swarm_section


def test_shipped_fabric_yaml_is_valid():
    settings = load_settings(shipped_section(), root=ROOT)
    assert [p.name for p in settings.panels] == ["admin", "store", "website"]
    assert settings.panel("store").domain == "store.fikaso.test"
    assert settings.panel("store").port == 8082
    assert settings.landing.port == 8084
    assert str(settings.base_dir) == "/srv/fikaso"
    assert settings.panel("admin").source == ROOT / "examples" / "laravel-app"


def broken(mutate):
    section = shipped_section()
    mutate(section)
    with pytest.raises(FikasoError) as error:
        load_settings(section, root=ROOT)
    return str(error.value)


def test_missing_section_says_where_to_get_one():
    with pytest.raises(FikasoError, match="no fikaso: section"):
        load_settings(None)


def test_unknown_panel_is_named_with_the_valid_ones():
    message = broken(lambda s: s["panels"].update(shop={"domain": "shop.fikaso.test", "source": "x"}))
    assert "unknown panel(s): shop" in message and "admin, store, website" in message


def test_missing_panel():
    message = broken(lambda s: s["panels"].pop("store"))
    assert "lacks panel(s): store" in message


def test_bad_domain_names_the_key_and_value():
    message = broken(lambda s: s["panels"]["store"].update(domain="store_fikaso"))
    assert "fikaso.panels.store.domain" in message and "'store_fikaso'" in message


def test_each_panel_is_checked_at_up_unless_it_says_otherwise():
    settings = load_settings(shipped_section(), root=ROOT)
    assert settings.panel("store").health == "/up" and settings.landing.health == "/"
    section = shipped_section()
    section["panels"]["store"]["health"] = "/health/ready"
    assert load_settings(section, root=ROOT).panel("store").health == "/health/ready"


@pytest.mark.parametrize("value", ["up", "/up here", "/up;reboot", 7])
def test_a_health_path_that_is_no_plain_path_is_named(value):
    message = broken(lambda s: s["panels"]["store"].update(health=value))
    assert "fikaso.panels.store.health" in message and "/up" in message


def test_alerts_are_off_unless_set_and_a_bad_address_is_named():
    settings = load_settings(shipped_section(), root=ROOT)
    assert settings.alerts.email == "" and not settings.alerts.deploys and settings.alerts.ca_bundle is None
    message = broken(lambda s: s.update(alerts={"email": "ops at example"}))
    assert "fikaso.alerts.email" in message
    message = broken(lambda s: s.update(alerts={"deploys": "yes"}))
    assert "deploys" in message and "true or false" in message


def test_duplicate_domains():
    message = broken(lambda s: s["panels"]["store"].update(domain="admin.fikaso.test"))
    assert "same domain" in message


def test_relative_base_dir():
    assert "absolute path" in broken(lambda s: s.update(base_dir="srv/fikaso"))


def test_base_dir_with_shell_characters():
    assert "plain characters" in broken(lambda s: s.update(base_dir="/srv/fi kaso;rm"))


def test_section_that_is_not_a_mapping():
    assert "must be a mapping" in broken(lambda s: s.update(panels=["admin"]))


def test_bad_image_reference():
    assert "images.mysql" in broken(lambda s: s["images"].update(mysql="MySQL 8"))


def test_keep_releases_bounds():
    assert "keep_releases" in broken(lambda s: s.update(keep_releases=1))


def test_host_with_spaces():
    assert "fikaso.host" in broken(lambda s: s.update(host="bad host"))


def test_sources_must_be_laravel_apps(tmp_path):
    section = shipped_section()
    section["panels"]["store"]["source"] = str(tmp_path)
    settings = load_settings(section, root=ROOT)
    with pytest.raises(FikasoError, match="not a Laravel app"):
        check_sources(settings, ("store",))
    section["panels"]["store"]["source"] = str(tmp_path / "nope")
    with pytest.raises(FikasoError, match="does not exist"):
        check_sources(load_settings(section, root=ROOT), ("store",))


def test_acme_server_names_and_urls():
    section = shipped_section()
    section["certificates"] = {}
    assert load_settings(section, root=ROOT).certificates.acme_server == \
        "https://acme-v02.api.letsencrypt.org/directory"
    section["certificates"] = {"acme_server": "letsencrypt-staging"}
    assert "acme-staging-v02" in load_settings(section, root=ROOT).certificates.acme_server
    assert load_settings(shipped_section(), root=ROOT).certificates.acme_server == "https://pebble:14000/dir"


@pytest.mark.parametrize("key, value, phrase", [
    ("acme_server", "http://insecure.example/dir", "https:// ACME directory URL"),
    ("acme_server", "lets-encrypt", "letsencrypt, letsencrypt-staging"),
    ("email", "not-an-address", "is not an email address"),
])
def test_bad_certificate_settings_are_named(key, value, phrase):
    message = broken(lambda s: s["certificates"].update({key: value}))
    assert f"certificates.{key}" in message and phrase in message


def test_ca_bundle_must_be_a_pem_file(tmp_path):
    from fikaso.config import check_ca_bundle
    section = shipped_section()
    section["certificates"]["ca_bundle"] = str(tmp_path / "missing.pem")
    with pytest.raises(FikasoError, match="is not a PEM file of CA certificates"):
        check_ca_bundle(load_settings(section, root=ROOT).certificates)


def test_ssh_config_files_are_relative_to_the_project(tmp_path):
    section = shipped_section()
    section["ssh_config"] = [".sandbox/ssh_config", str(tmp_path / "other")]
    assert load_settings(section, root=ROOT).ssh_config == (ROOT / ".sandbox" / "ssh_config", tmp_path / "other")
    section.pop("ssh_config")
    assert load_settings(section, root=ROOT).ssh_config == ()


@pytest.mark.parametrize("value", [".sandbox/ssh_config", [".sandbox/ssh_config", 3], [""], {"a": "b"}])
def test_ssh_config_must_be_a_list_of_file_names(value):
    message = broken(lambda s: s.update(ssh_config=value))
    assert "fikaso.ssh_config must be a list of file names" in message and "- .sandbox/ssh_config" in message


THREE_NODES = [{"host": "deploy@10.0.0.1", "roles": ["manager", "database", "web", "edge"]},
               {"host": "deploy@10.0.0.2", "roles": ["web", "edge"]},
               {"host": "deploy@10.0.0.3", "roles": ["web"], "address": "10.1.0.3"}]


def test_one_vps_has_no_nodes_and_is_no_swarm():
    assert not load_settings(shipped_section(), root=ROOT).swarm


def test_nodes_make_a_swarm_with_roles_and_replicas():
    section = swarm_section(THREE_NODES, replicas=3)
    section["panels"]["store"] = {**section["panels"]["store"], "replicas": 4}
    settings = load_settings(section, root=ROOT)
    assert settings.swarm and settings.primary.host == "deploy@10.0.0.1"
    assert [n.host for n in settings.with_role("edge")] == ["deploy@10.0.0.1", "deploy@10.0.0.2"]
    assert settings.nodes[2].address == "10.1.0.3"
    assert dict(settings.replicas) == {"admin": 3, "store": 4, "website": 3}


@pytest.mark.parametrize("nodes, says", [
    ("vps1", "must be a list of VPSs"),
    ([{"host": "a", "roles": "web"}], "nodes[1].roles must be a list"),
    ([{"host": "a", "roles": ["web", "db"]}], "unknown role(s): db"),
    ([{"host": "a", "roles": ["manager", "web", "edge"]}], "database role to exactly one VPS, not 0"),
    ([{"host": "a", "roles": ["manager", "database", "web", "edge"]}, {"host": "b", "roles": ["database"]}],
     "database role to exactly one VPS, not 2"),
    ([{"host": "a", "roles": ["database", "web", "edge"]}], "manager role to at least one VPS"),
    ([{"host": "a", "roles": ["manager", "database", "web", "edge"]}, {"host": "a", "roles": ["web"]}],
     "names the same host twice"),
    ([{"host": "a", "roles": ["manager", "database", "web", "edge"], "address": "eth0"}], "is not an IP address"),
])
def test_bad_nodes_are_named_with_the_fix(nodes, says):
    assert says in broken(lambda s: s.update(nodes=nodes))


def test_replicas_must_be_a_small_whole_number():
    assert "fikaso.replicas must be a whole number from 1 to 50" in broken(lambda s: s.update(replicas=0))


@pytest.mark.parametrize("key, value, phrase", [
    ("workers", 21, "from 0 to 20"), ("workers", -1, "from 0 to 20"), ("workers", "2", "from 0 to 20"),
    ("workers", True, "from 0 to 20"), ("scheduler", "yes", "true or false")])
def test_bad_queue_worker_and_scheduler_settings_are_named(key, value, phrase):
    message = broken(lambda s: s["panels"]["admin"].update({key: value}))
    assert f"fikaso.panels.admin.{key}" in message and phrase in message


def test_queue_workers_and_the_scheduler_are_per_panel_and_off_by_default():
    section = shipped_section()
    section["panels"]["admin"].update(workers=3, scheduler=True)
    section["panels"]["store"].pop("workers")
    section["panels"]["store"].pop("scheduler")
    settings = load_settings(section, root=ROOT)
    assert (settings.panel("admin").workers, settings.panel("admin").scheduler) == (3, True)
    assert (settings.panel("store").workers, settings.panel("store").scheduler) == (0, False)


def test_queue_workers_on_a_swarm_are_refused_with_the_way_round():
    message = broken(lambda s: s.update(nodes=THREE_NODES))
    assert "fikaso.panels.store" in message and "swarm" in message and "workers: 0 and scheduler: false" in message


@pytest.mark.parametrize("value", [0, 101, "8", True, 2.5])
def test_a_bad_fpm_workers_setting_is_named_with_its_range(value):
    message = broken(lambda s: s["panels"]["store"].update(fpm_workers=value))
    assert "fikaso.panels.store.fpm_workers must be a whole number from 1 to 100" in message


def test_fpm_workers_on_a_swarm_are_refused_with_the_way_round():
    section = swarm_section(THREE_NODES)
    section["panels"]["admin"]["fpm_workers"] = 8
    with pytest.raises(FikasoError) as raised:
        load_settings(section, root=ROOT)
    assert "fikaso.panels.admin.fpm_workers is for one VPS" in str(raised.value)
    assert "replicas" in str(raised.value)
