#!/bin/sh
# Debian 12 packages the module tests (tests/integration) and `bench/run provision`
# need on the host that runs them: MariaDB (mariadbd + mariadb-install-db, the
# tests start their own throw-away server; with galera-4, rsync and socat, which
# mariadb-server depends on, three-node Galera clusters, and mariadb-backup for the
# mail_database role's SST in test_galera_config.py) and Dovecot (doveadm pw -t, the hash
# compatibility check; with dovecot-mysql, the SQL connect line of the role's
# template against two servers), Postfix's MySQL maps (postfix-mysql: postmap
# queries the role's map file against two servers), rsync and OpenSSH (maildir_sync's tests and
# `bench/run maildir_sync`; the tests run their own sshd on a loopback port),
# Pigeonhole (dovecot-sieve: sieve-test runs role dovecot's global script),
# ShellCheck for ansible-test sanity, and nftables (nft -c -f and nft -f of role
# firewall's rules in a network namespace of their own: tests/integration/
# test_firewall_nft.py). Idempotent: installs only what is missing, and keeps the
# packages' services from starting (policy-rc.d) while installing.
set -eu

PACKAGES="mariadb-server mariadb-client mariadb-backup dovecot-core dovecot-mysql dovecot-sieve postfix-mysql rsync openssh-client openssh-server shellcheck nftables"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "test host packages already installed:$PACKAGES"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

policy=/usr/sbin/policy-rc.d
created_policy=no
cleanup() {
    if [ "$created_policy" = yes ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT INT TERM

if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    created_policy=yes
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
