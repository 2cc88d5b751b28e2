#!/bin/sh
# Makes a CA and a certificate for pebble's own HTTPS API (the name `pebble`), starts the DNS
# server pebble asks, then pebble. The CA is /pebble/ca.pem: certbot must trust it.
set -eu
: "${ANSWER_IPV4:?set ANSWER_IPV4 to the address every domain should resolve to}"
mkdir -p /pebble
cd /pebble
if [ ! -s cert.pem ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=Fikaso sandbox ACME API CA" -keyout ca.key -out ca.pem 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pebble" \
		-keyout key.pem -out request.pem 2>/dev/null
	printf 'subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1\n' >extensions
	openssl x509 -req -in request.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
		-extfile extensions -out cert.pem 2>/dev/null
fi
pebble-challtestsrv -defaultIPv4 "$ANSWER_IPV4" -defaultIPv6 "" -dns01 :8053 -management :8055 \
	-http01 "" -https01 "" -tlsalpn01 "" &
exec pebble -config /etc/pebble/pebble.json -dnsserver 127.0.0.1:8053
