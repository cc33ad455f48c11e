//! HMAC-SHA256 (RFC 2104) over `sha2`, for values we hand out and must recognise later (the web-chat
//! visitor cookie) and for providers that sign their webhooks. Small enough to write here rather
//! than pull another crate.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for ((inner, outer), byte) in inner_pad.iter_mut().zip(outer_pad.iter_mut()).zip(block) {
        *inner ^= byte;
        *outer ^= byte;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares without stopping at the first difference, so timing does not reveal how much of a
/// forged signature was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `signature_hex` is the HMAC-SHA256 of `message` under `key`, in lower- or upper-case hex.
pub fn verify_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    match hex::decode(signature_hex.trim()) {
        Ok(given) => constant_time_eq(&hmac_sha256(key, message), &given),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_cases() {
        // Test case 2: a key shorter than the block.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn verification_accepts_the_signature_and_refuses_any_change() {
        let signature = hex::encode(hmac_sha256(b"key", b"payload"));
        assert!(verify_hex(b"key", b"payload", &signature));
        assert!(verify_hex(b"key", b"payload", &signature.to_uppercase()));
        assert!(!verify_hex(b"key", b"payload!", &signature));
        assert!(!verify_hex(b"other", b"payload", &signature));
        assert!(!verify_hex(b"key", b"payload", "not hex"));
        assert!(!verify_hex(b"key", b"payload", &signature[..10]));
    }
}
