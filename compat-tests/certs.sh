#!/usr/bin/env bash
# Certificates for the security scenarios, made here by openssl (source this file after
# setting C, the directory for them, and WORK, where openssl's messages go):
#   ca NAME                      a self-signed CA: $C/NAME.pem, $C/NAME.key
#   leaf NAME CA SUBJECT [SAN]   a v3 certificate signed by CA (server and client use)
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ca() { # NAME
  ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$C/$1.key" -out "$C/$1.pem"
}
leaf() { # NAME CA SUBJECT [SAN]
  local ext="$C/$1.ext"
  # Extensions make a v3 certificate, which WebPKI (rustls) requires.
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$ext"
  [ -n "${4:-}" ] && echo "subjectAltName=$4" >>"$ext"
  ossl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$C/$1.key" -out "$C/$1.csr"
  ossl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$C/$1.pem"
}
