#!/usr/bin/env bash
# Make sure MariaDB/MySQL (127.0.0.1:3306) and NATS with JetStream (127.0.0.1:4222)
# answer; start local ones when they do not, installing Debian's packages when
# run as root and they are missing. Idempotent; prints what it did.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "ensure-services: nothing answers on 127.0.0.1:$1 after 30 s" >&2
  return 1
}
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "ensure-services: $* missing and not root: install it" >&2; return 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}

if port_open 3306; then
  echo "ensure-services: MySQL/MariaDB answers on 127.0.0.1:3306"
else
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port 3306
  echo "ensure-services: started MariaDB on 127.0.0.1:3306"
fi

if port_open 4222; then
  echo "ensure-services: NATS answers on 127.0.0.1:4222"
else
  [ -x /usr/sbin/nats-server ] || apt_install nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222
  echo "ensure-services: started nats-server (JetStream) on 127.0.0.1:4222"
fi
