# Sourced by the benchmarks that upload a signed image (ingest.sh,
# serve.sh): makes, once, under $BENCH_DIR (default /tmp/portcullis-bench),
# a $SIZE_MIB MiB random input (default 1024), an RSA-3072 key with a
# self-signed certificate in $BENCH_DIR/certs, and properties.json with the
# input's RSA-PSS SHA-512 signature. Sets: input, bytes, cert_uuid.
BENCH_DIR=${BENCH_DIR:-/tmp/portcullis-bench}
SIZE_MIB=${SIZE_MIB:-1024}
mkdir -p "$BENCH_DIR/certs"

input="$BENCH_DIR/input-${SIZE_MIB}MiB.bin"
if [[ ! -f $input ]]; then
    echo "making $input" >&2
    openssl rand -out "$input" $((SIZE_MIB * 1024 * 1024))
fi
bytes=$(stat -c %s "$input")

cert_uuid=6b2c3a1e-0f4d-4e8a-9c1b-2d3e4f5a6b7c
if [[ ! -f $BENCH_DIR/key.pem ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$BENCH_DIR/key.pem" 2>/dev/null
    openssl req -new -x509 -key "$BENCH_DIR/key.pem" -subj "/CN=portcullis bench" -days 3650 \
        -out "$BENCH_DIR/certs/$cert_uuid.pem" 2>/dev/null
fi
if [[ ! -f $BENCH_DIR/properties.json || $input -nt $BENCH_DIR/properties.json ]]; then
    signature=$(openssl dgst -sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2 \
        -sign "$BENCH_DIR/key.pem" "$input" | base64 -w0)
    cat > "$BENCH_DIR/properties.json" <<JSON
{"img_signature": "$signature", "img_signature_hash_method": "SHA-512",
 "img_signature_key_type": "RSA-PSS", "img_signature_certificate_uuid": "$cert_uuid"}
JSON
fi

