//! Measures the hash backends `src/hash.rs` can choose from, single core,
//! 64 KiB updates over 512 MiB: RustCrypto (`md-5`, `sha2`) against OpenSSL
//! (when the `binary-curves` feature brings the `openssl` crate in), and
//! `portcullis::hash::Hasher` itself, which must match the faster one.
//!
//! Run: `cargo bench --bench ingest_hash_backends`. Prints MB/s and ratios.
//! It must not assert timings: the figures are for humans and the notes.

use std::time::Instant;

use digest::Digest as _;
use portcullis::hash::HashAlgorithm;

const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 512 * 1024 * 1024;

fn measure(name: &str, mut update: impl FnMut(&[u8]), chunk: &[u8]) -> f64 {
    let started = Instant::now();
    for _ in 0..TOTAL / CHUNK {
        update(chunk);
    }
    let mb_per_s = TOTAL as f64 / started.elapsed().as_secs_f64() / 1e6;
    println!("{name:<28} {mb_per_s:8.0} MB/s");
    mb_per_s
}

fn main() {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();

    let mut md5_rust = md5::Md5::new();
    let rust_md5 = measure("md-5 crate", |data| md5_rust.update(data), &chunk);
    let mut sha512_rust = sha2::Sha512::new();
    let rust_sha512 = measure("sha2 crate sha512", |data| sha512_rust.update(data), &chunk);

    #[cfg(not(feature = "binary-curves"))]
    println!(
        "(built without binary-curves: no OpenSSL to compare; md-5 {rust_md5:.0}, sha2 {rust_sha512:.0} MB/s)"
    );
    #[cfg(feature = "binary-curves")]
    {
        let mut md5_ossl = openssl::hash::Hasher::new(openssl::hash::MessageDigest::md5())
            .expect("openssl md5 is available");
        let ossl_md5 = measure(
            "openssl md5",
            |data| md5_ossl.update(data).expect("md5 update"),
            &chunk,
        );
        let mut sha512_ossl = openssl::hash::Hasher::new(openssl::hash::MessageDigest::sha512())
            .expect("openssl sha512 is available");
        let ossl_sha512 = measure(
            "openssl sha512",
            |data| sha512_ossl.update(data).expect("sha512 update"),
            &chunk,
        );
        println!("ratio md5 md-5/openssl        {:8.2}", rust_md5 / ossl_md5);
        println!(
            "ratio sha512 sha2/openssl     {:8.2}",
            rust_sha512 / ossl_sha512
        );
    }

    let mut ours_md5 = HashAlgorithm::Md5.hasher();
    measure(
        "portcullis Hasher md5",
        |data| ours_md5.update(data),
        &chunk,
    );
    let mut ours_sha512 = HashAlgorithm::Sha512.hasher();
    measure(
        "portcullis Hasher sha512",
        |data| ours_sha512.update(data),
        &chunk,
    );
}
