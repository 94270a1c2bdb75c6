//! Incremental hashing shared by signature verification and ingest.
//!
//! One [`Hasher`] per algorithm, fed with `update` and closed with
//! `finish`. Ingest hashes each chunk once and hands the [`Digest`] to the
//! verifier when the signature's hash equals the `os_hash_algo`, so no
//! algorithm here ever runs twice over the same bytes.

use std::fmt;
use std::str::FromStr;

#[cfg(not(feature = "binary-curves"))]
use digest::Digest as _;

/// A hash algorithm portcullis computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    /// MD5, only for Glance's legacy `checksum`.
    Md5,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512 (Glance's default `os_hash_algo`).
    Sha512,
}

impl HashAlgorithm {
    /// Every algorithm.
    pub const ALL: &'static [HashAlgorithm] = &[
        HashAlgorithm::Md5,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The hashlib name Glance stores in `os_hash_algo` (`sha512`).
    pub fn hashlib_name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// A fresh hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        Hasher::new(self)
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hashlib_name())
    }
}

/// A hashlib name portcullis does not compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "hash algorithm {0:?} is not supported (expected one of: md5, sha224, sha256, sha384, sha512)"
)]
pub struct UnknownHashAlgorithm(pub String);

impl FromStr for HashAlgorithm {
    type Err = UnknownHashAlgorithm;
    /// Parses a hashlib name (`sha512`), as Glance's `hashing_algorithm` option.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlgorithm::ALL
            .iter()
            .copied()
            .find(|algorithm| algorithm.hashlib_name() == s)
            .ok_or_else(|| UnknownHashAlgorithm(s.to_owned()))
    }
}

/// An incremental hash computation.
///
/// The backend is chosen by measurement (benches/ingest_hash_backends.rs):
/// with the `binary-curves` feature the `openssl` crate is linked anyway, and
/// OpenSSL's MD5 and SHA-512 are faster than RustCrypto's on the reference
/// machine (md5 ~670 vs ~560 MB/s, sha512 ~760 vs ~535 MB/s; SHA-256 is
/// equal with SHA-NI), so OpenSSL computes every algorithm then. Without the
/// feature, RustCrypto (`md-5`, `sha2`) does.
#[derive(Clone)]
pub struct Hasher {
    algorithm: HashAlgorithm,
    backend: Backend,
}

#[cfg(feature = "binary-curves")]
#[derive(Clone)]
struct Backend(openssl::hash::Hasher);

#[cfg(not(feature = "binary-curves"))]
#[derive(Clone)]
enum Backend {
    Md5(md5::Md5),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

#[cfg(feature = "binary-curves")]
impl Backend {
    fn new(algorithm: HashAlgorithm) -> Backend {
        use openssl::hash::MessageDigest;
        let message_digest = match algorithm {
            HashAlgorithm::Md5 => MessageDigest::md5(),
            HashAlgorithm::Sha224 => MessageDigest::sha224(),
            HashAlgorithm::Sha256 => MessageDigest::sha256(),
            HashAlgorithm::Sha384 => MessageDigest::sha384(),
            HashAlgorithm::Sha512 => MessageDigest::sha512(),
        };
        // OpenSSL 3 can refuse MD5 only in FIPS mode, which portcullis does
        // not configure; the default provider always has these five.
        Backend(
            openssl::hash::Hasher::new(message_digest)
                .expect("the default OpenSSL provider implements md5 and SHA-2"),
        )
    }

    fn update(&mut self, data: &[u8]) {
        // EVP_DigestUpdate fails only on a context misuse, which the
        // `Hasher` type rules out (update after finish is impossible).
        self.0
            .update(data)
            .expect("EVP_DigestUpdate on a live context does not fail");
    }

    fn finish(mut self) -> Vec<u8> {
        self.0
            .finish()
            .expect("EVP_DigestFinal on a live context does not fail")
            .to_vec()
    }
}

#[cfg(not(feature = "binary-curves"))]
impl Backend {
    fn new(algorithm: HashAlgorithm) -> Backend {
        match algorithm {
            HashAlgorithm::Md5 => Backend::Md5(md5::Md5::new()),
            HashAlgorithm::Sha224 => Backend::Sha224(sha2::Sha224::new()),
            HashAlgorithm::Sha256 => Backend::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Backend::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Backend::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Backend::Md5(h) => h.update(data),
            Backend::Sha224(h) => h.update(data),
            Backend::Sha256(h) => h.update(data),
            Backend::Sha384(h) => h.update(data),
            Backend::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Backend::Md5(h) => h.finalize().to_vec(),
            Backend::Sha224(h) => h.finalize().to_vec(),
            Backend::Sha256(h) => h.finalize().to_vec(),
            Backend::Sha384(h) => h.finalize().to_vec(),
            Backend::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hasher").field(&self.algorithm).finish()
    }
}

impl Hasher {
    /// Starts hashing with `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Hasher {
        Hasher {
            algorithm,
            backend: Backend::new(algorithm),
        }
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.backend.update(data);
    }

    /// Finishes and returns the digest.
    pub fn finish(self) -> Digest {
        Digest {
            algorithm: self.algorithm,
            bytes: self.backend.finish(),
        }
    }
}

/// A finished digest, tagged with its algorithm so it cannot be checked
/// against a signature made with another hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    algorithm: HashAlgorithm,
    bytes: Vec<u8>,
}

impl Digest {
    /// Wraps bytes computed elsewhere.
    ///
    /// Returns `None` when the length does not fit `algorithm`.
    pub fn from_bytes(algorithm: HashAlgorithm, bytes: Vec<u8>) -> Option<Digest> {
        (bytes.len() == algorithm.output_len()).then_some(Digest { algorithm, bytes })
    }

    /// The algorithm that produced it.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lower-case hex, as Glance stores `checksum` and `os_hash_value`.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(algorithm: HashAlgorithm, data: &[u8]) -> String {
        let mut hasher = algorithm.hasher();
        // Split the input to exercise incremental updates.
        let (a, b) = data.split_at(data.len() / 2);
        hasher.update(a);
        hasher.update(b);
        hasher.finish().to_hex()
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            hex_of(HashAlgorithm::Md5, b""),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hex_of(HashAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex_of(HashAlgorithm::Sha512, b"").starts_with("cf83e135"));
        for algorithm in HashAlgorithm::ALL {
            assert_eq!(hex_of(*algorithm, b"x").len(), algorithm.output_len() * 2);
        }
    }

    #[test]
    fn backend_agrees_with_rustcrypto() {
        use digest::Digest as _;
        // A length that is not a multiple of any block size, split unevenly.
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 % 253) as u8).collect();
        let expected = [
            (HashAlgorithm::Md5, md5::Md5::digest(&data).to_vec()),
            (HashAlgorithm::Sha224, sha2::Sha224::digest(&data).to_vec()),
            (HashAlgorithm::Sha256, sha2::Sha256::digest(&data).to_vec()),
            (HashAlgorithm::Sha384, sha2::Sha384::digest(&data).to_vec()),
            (HashAlgorithm::Sha512, sha2::Sha512::digest(&data).to_vec()),
        ];
        for (algorithm, bytes) in expected {
            let mut hasher = algorithm.hasher();
            for piece in data.chunks(4099) {
                hasher.update(piece);
            }
            assert_eq!(hasher.finish().as_bytes(), bytes.as_slice(), "{algorithm}");
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "sha512".parse::<HashAlgorithm>().unwrap(),
            HashAlgorithm::Sha512
        );
        assert!("SHA-512".parse::<HashAlgorithm>().is_err());
    }
}
