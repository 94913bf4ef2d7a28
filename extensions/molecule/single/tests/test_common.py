"""Role common on every host of the scenario."""

import os

import testinfra.utils.ansible_runner

testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]


def test_systemd_runs_without_failed_units(host):
    assert host.check_output("ps -p 1 -o comm=") == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.check_output("systemctl --failed --no-legend")


def test_extra_packages_installed(host):
    assert host.package("rsync").is_installed


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Berlin"
    assert host.file("/etc/timezone").content_string.strip() == "Europe/Berlin"
    assert host.check_output("date +%Z") in ("CET", "CEST")


def test_ntp_servers(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/mailstack.conf")
    assert conf.mode == 0o644
    assert "NTP=ntp1.example.test ntp2.example.test" in conf.content_string


def test_logging_and_cron_run(host):
    assert host.service("rsyslog").is_running
    assert host.service("cron").is_running


def test_resolver_written_only_where_asked(host):
    resolv = host.file("/etc/resolv.conf").content_string
    name = host.backend.get_hostname()
    if name in ("outside1", "mx1"):
        assert "search %s" % ("outside.test" if name == "outside1" else "example.test") in resolv
        assert "Ansible managed" in resolv
        ns1 = testinfra.get_host("podman://ns1").check_output("hostname -I").split()[0]
        assert "nameserver %s" % ns1 in resolv
    else:
        assert "Ansible managed" not in resolv
