#!/usr/bin/env bash
# Regenerates the signature-verification fixtures with the openssl CLI:
#   testdata/keys/        private keys (test-only, never use them elsewhere)
#   testdata/certs/       the directory key store: <uuid>.pem / <uuid>.der, plus INDEX (name -> uuid)
#   testdata/signatures/  data.bin and base64 signatures over it (<name>.<hash>.b64)
#   testdata/sample/      a small qcow2 and properties.json for README's first command
# Certificate ids are derived from fixture names (md5 of the name), so they stay
# the same across regenerations; keys and signatures change.
# Needs: openssl 3.0 (with binary curves: ec2m), qemu-img. Usage: testdata/generate-verify.sh
set -euo pipefail
cd "$(dirname "$0")"
TD=$(pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rm -rf keys certs signatures sample
mkdir -p keys certs signatures sample
: > certs/INDEX

# Validity used unless a fixture says otherwise; tests pin PORTCULLIS_NOW=2026-06-01T00:00:00Z.
START=20250101000000Z
END=20350101000000Z

uuid_of() { # deterministic id from a fixture name
    local h
    h=$(printf 'portcullis-fixture:%s' "$1" | md5sum | cut -c1-32)
    echo "${h:0:8}-${h:8:4}-4${h:13:3}-a${h:17:3}-${h:20:12}"
}

register() { # name file-extension -> path of the store entry
    local id
    id=$(uuid_of "$1")
    printf '%s %s\n' "$1" "$id" >> certs/INDEX
    echo "certs/$id.$2"
}

# --- keys -------------------------------------------------------------------
genrsa() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" ${3:+-pkeyopt rsa_keygen_pubexp:$3} -out "keys/$1.pem" 2>/dev/null; }
genec() { openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -pkeyopt ec_param_enc:named_curve -out "keys/$1.pem"; }
gendsa() {
    openssl genpkey -genparam -algorithm DSA -pkeyopt "dsa_paramgen_bits:$2" -out "$WORK/$1.param" 2>/dev/null
    openssl genpkey -paramfile "$WORK/$1.param" -out "keys/$1.pem"
}

genrsa rsa2048 2048
genrsa rsa4096 4096
genrsa rsa1024 1024
genrsa rsa512 512
genrsa rsa2049 2049
genrsa rsa2048e3 2048 3
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out keys/rsapss2048.pem 2>/dev/null
genec p256 P-256
genec p384 P-384
genec p521 P-521
gendsa dsa1024 1024
gendsa dsa2048 2048
gendsa dsa3072 3072
for curve in sect409k1 sect409r1 sect571k1 sect571r1; do
    # ecparam writes SEC1 "EC PRIVATE KEY", the form older clouds hold.
    openssl ecparam -name "$curve" -genkey -noout -out "keys/$curve.pem"
done
openssl genpkey -algorithm ed25519 -out keys/ed25519.pem
# Chain fixtures: one signing key for every chain leaf, so one signature serves them all.
genrsa chainleaf 2048
for ca in root-ca inter-ca root-pl0 inter-pl root-noku root-nocertsign root-pss root-other inter-bt loop-a loop-b; do
    genrsa "$ca" 2048
done
genec root-ec P-384
openssl genpkey -algorithm ed25519 -out keys/root-ed25519.pem
genrsa sample 2048

# --- certificates -----------------------------------------------------------
cat > "$WORK/ca.cnf" <<'EOF'
[ ca ]
default_ca = CA_default
[ CA_default ]
database = $ENV::CADIR/index.txt
new_certs_dir = $ENV::CADIR
serial = $ENV::CADIR/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[ leaf_keyenc ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
[ ext_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ ca_pl0 ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
[ ca_noku ]
basicConstraints = critical,CA:TRUE
[ ca_nocertsign ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
[ ca_leaf ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,digitalSignature
EOF

# A request config that encodes names as PrintableString (the default is UTF8String).
cat > "$WORK/printable.cnf" <<'EOF'
[ req ]
distinguished_name = dn
string_mask = nombstr
[ dn ]
EOF

# issue NAME SUBJECT_KEY "CN" EXT ISSUER_NAME|self [START END [extra ca args...]]
issue() {
    local name=$1 key=$2 cn=$3 ext=$4 issuer=$5 start=${6:-$START} end=${7:-$END}
    shift 7 2>/dev/null || shift $#
    local out
    out=$(register "$name" pem)
    export CADIR="$WORK/ca-$name"
    mkdir -p "$CADIR"
    : > "$CADIR/index.txt"
    printf '%s\n' "$(printf '%s' "$name" | md5sum | cut -c1-16)" > "$CADIR/serial"
    openssl req -new -key "keys/$key.pem" -subj "/CN=$cn/O=portcullis tests" ${REQ_CONFIG:+-config "$REQ_CONFIG"} \
        -out "$CADIR/req.csr"
    local signer=()
    if [ "$issuer" = self ]; then
        signer=(-selfsign -keyfile "keys/$key.pem")
    else
        signer=(-cert "$WORK/$issuer.crt" -keyfile "keys/$(cat "$WORK/$issuer.key")")
    fi
    openssl ca -batch -notext -preserveDN -config "$WORK/ca.cnf" "${signer[@]}" -in "$CADIR/req.csr" \
        -startdate "$start" -enddate "$end" -extensions "$ext" -out "$out" "$@" 2>/dev/null
    cp "$out" "$WORK/$name.crt"
    echo "$key.pem" > "$WORK/$name.key"
}

# Self-signed signing certificates, one per key (no chain validation).
for key in rsa2048 rsa4096 rsa1024 rsa512 rsa2049 rsa2048e3 rsapss2048 p256 p384 p521 dsa1024 dsa2048 dsa3072 \
           sect409k1 sect409r1 sect571k1 sect571r1 ed25519; do
    issue "cert-$key" "$key" "signer $key" leaf self
done
issue cert-rsa2048-expired rsa2048 "signer rsa2048 expired" leaf self 20200101000000Z 20210101000000Z
issue cert-rsa2048-future rsa2048 "signer rsa2048 future" leaf self 20400101000000Z 20450101000000Z

# A PKI: root -> intermediate (pathlen 0) -> leaf, and variants.
issue root-ca root-ca "Test Root CA" ext_ca self
issue inter-ca inter-ca "Test Intermediate CA" ca_pl0 root-ca
issue chain-leaf chainleaf "chain leaf" leaf inter-ca
issue chain-leaf-direct chainleaf "chain leaf direct" leaf root-ca
issue chain-leaf-keyenc chainleaf "chain leaf keyEncipherment" leaf_keyenc root-ca
issue chain-leaf-sha1 chainleaf "chain leaf sha1" leaf root-ca "" "" -md sha1
issue chain-leaf-expired chainleaf "chain leaf expired" leaf root-ca 20200101000000Z 20210101000000Z
issue chain-leaf-future chainleaf "chain leaf future" leaf root-ca 20400101000000Z 20450101000000Z
issue inter-expired inter-ca "Expired Intermediate CA" ext_ca root-ca 20200101000000Z 20210101000000Z
issue chain-leaf-under-expired chainleaf "chain leaf under expired" leaf inter-expired
# Name comparison: case matters, the string type (UTF8 vs Printable) does not.
issue root-ca-lowercase root-ca "test root ca" ext_ca self
REQ_CONFIG="$WORK/printable.cnf" issue root-ca-printable root-ca "Test Root CA" ext_ca self
# pathLen: root (pathlen 0) -> intermediate -> leaf breaks the constraint.
issue root-pl0 root-pl0 "PathLen0 Root" ca_pl0 self
issue inter-pl inter-pl "PathLen Intermediate" ext_ca root-pl0
issue chain-leaf-pl chainleaf "chain leaf pathlen" leaf inter-pl
# A CA without keyUsage (RFC 5280 lets it issue; cursive does not) and one without keyCertSign.
issue root-noku root-noku "No KeyUsage Root" ca_noku self
issue chain-leaf-noku chainleaf "chain leaf noku" leaf root-noku
issue root-nocertsign root-nocertsign "No CertSign Root" ca_nocertsign self
issue chain-leaf-nocertsign chainleaf "chain leaf nocertsign" leaf root-nocertsign
# Issuers signing with RSA-PSS, Ed25519 and ECDSA P-384.
issue root-pss root-pss "PSS Root" ext_ca self "" "" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
issue chain-leaf-pss chainleaf "chain leaf pss" leaf root-pss "" "" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
issue root-ed25519 root-ed25519 "Ed25519 Root" ext_ca self "" "" -md default
issue chain-leaf-ed25519 chainleaf "chain leaf ed25519" leaf root-ed25519 "" "" -md default
issue root-ec root-ec "EC Root" ext_ca self "" "" -md sha384
issue chain-leaf-ec chainleaf "chain leaf ec" leaf root-ec "" "" -md sha384
# Backtracking: two certificates for "BT Intermediate" (same key); the first
# listed was issued by an untrusted root, the second by a trusted one.
issue root-other root-other "Other Root" ext_ca self
issue inter-bt-orphan inter-bt "BT Intermediate" ext_ca root-other
issue root-bt root-ca "BT Root" ext_ca self
issue inter-bt inter-bt "BT Intermediate" ext_ca root-bt
issue chain-leaf-bt chainleaf "chain leaf bt" leaf inter-bt
# A loop: two CAs that issued each other, and a leaf under one of them.
issue loop-a-seed loop-a "Loop A" ext_ca self
issue loop-b loop-b "Loop B" ext_ca loop-a-seed
issue loop-a loop-a "Loop A" ext_ca loop-b
issue chain-leaf-loop chainleaf "chain leaf loop" leaf loop-a
# A self-signed certificate that is its own trust anchor (CA + keyCertSign + digitalSignature).
issue chain-selfsigned-ca chainleaf "self-signed anchor" ca_leaf self
# The sample image's certificate: valid from 2024 to 2099 so it verifies at real time.
issue sample sample "portcullis sample signer" leaf self 20240101000000Z 20991231235959Z

# Odd key-store entries (Barbican semantics).
openssl pkey -in keys/rsa2048.pem -out "$(register store-private-key pem)"
openssl pkey -in keys/rsa2048.pem -pubout -out "$(register store-public-key pem)"
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' > "$(register store-garbage pem)"
printf 'this is not PEM at all\n' > "$(register store-text pem)"
{ printf 'Bag Attributes\n    friendlyName: signer\nsubject=CN = signer rsa2048\n'; cat "$WORK/cert-rsa2048.crt"; } > "$(register store-leading-text pem)"
cat "$WORK/cert-rsa2048.crt" "$WORK/cert-p384.crt" > "$(register store-bundle pem)"
openssl x509 -in "$WORK/cert-rsa2048.crt" -outform DER -out "$(register store-der der)"
openssl ecparam -name secp384r1 -out "$(register store-ec-params pem)"

# --- signatures -------------------------------------------------------------
head -c 200000 /dev/urandom > signatures/data.bin
DATA=signatures/data.bin
sign() { # out-name key hash [sigopts...]
    local out=$1 key=$2 hash=$3
    shift 3
    openssl dgst "-$hash" -sign "keys/$key.pem" "$@" "$DATA" | openssl base64 -A > "signatures/$out.b64"
}
pss=(-sigopt rsa_padding_mode:pss)
for hash in sha224 sha256 sha384 sha512; do
    sign "rsa2048.$hash" rsa2048 "$hash" "${pss[@]}"
    for key in p384 p521 dsa2048 sect409k1 sect409r1 sect571k1 sect571r1; do
        sign "$key.$hash" "$key" "$hash"
    done
done
for key in rsa4096 rsa1024 rsa512 rsa2049 rsa2048e3 rsapss2048; do
    sign "$key.sha256" "$key" sha256 "${pss[@]}"
done
for key in p256 dsa1024 dsa3072; do
    sign "$key.sha256" "$key" sha256
done
# PSS salt lengths other than the maximum (cursive >= 0.3 accepts them, legacy did not).
for salt in 0 1 20 32 221; do
    sign "rsa2048.sha256.salt$salt" rsa2048 sha256 "${pss[@]}" -sigopt "rsa_pss_saltlen:$salt"
done
sign rsa2048.sha256.mgf1sha1 rsa2048 sha256 "${pss[@]}" -sigopt rsa_mgf1_md:sha1
sign rsa2048.sha256.pkcs1 rsa2048 sha256
sign chainleaf.sha256 chainleaf sha256 "${pss[@]}"
# A max-salt PSS signature whose first byte is zero (tests strip it: short signatures verify).
for _ in $(seq 1 2000); do
    openssl dgst -sha256 -sign keys/rsa2048.pem "${pss[@]}" "$DATA" > "$WORK/lz.sig"
    if [ "$(head -c1 "$WORK/lz.sig" | od -An -tx1 | tr -d ' ')" = 00 ]; then
        openssl base64 -A < "$WORK/lz.sig" > signatures/rsa2048.sha256.leadingzero.b64
        break
    fi
done
test -s signatures/rsa2048.sha256.leadingzero.b64

# --- sample image -----------------------------------------------------------
qemu-img create -q -f qcow2 sample/sample.qcow2 64M
SIG=$(openssl dgst -sha256 -sign keys/sample.pem "${pss[@]}" sample/sample.qcow2 | openssl base64 -A)
cat > sample/properties.json <<EOF
{
  "img_signature": "$SIG",
  "img_signature_hash_method": "SHA-256",
  "img_signature_key_type": "RSA-PSS",
  "img_signature_certificate_uuid": "$(uuid_of sample)"
}
EOF
echo "fixtures regenerated in $TD"
