#![allow(dead_code)]
//! A software passkey: what a browser and a platform authenticator send, built as WebAuthn
//! Level 2 specifies it (ES256 keys, "none" attestation, user present and verified, a signature
//! counter), so the tests drive the real endpoints the way Chromium does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_CREDENTIAL: u8 = 0x40;
/// The model this software authenticator says it is (its AAGUID).
pub const AAGUID: &str = "0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6";

/// A minimal CBOR value, enough for an attestation object and a COSE key.
enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Map(Vec<(Cbor, Cbor)>),
}

impl Cbor {
    fn encode(&self, out: &mut Vec<u8>) {
        fn head(out: &mut Vec<u8>, major: u8, n: u64) {
            match n {
                0..=23 => out.push(major << 5 | n as u8),
                24..=0xff => out.extend([major << 5 | 24, n as u8]),
                0x100..=0xffff => {
                    out.push(major << 5 | 25);
                    out.extend((n as u16).to_be_bytes());
                }
                _ => {
                    out.push(major << 5 | 26);
                    out.extend((n as u32).to_be_bytes());
                }
            }
        }
        match self {
            Cbor::Int(n) if *n >= 0 => head(out, 0, *n as u64),
            Cbor::Int(n) => head(out, 1, (-1 - n) as u64),
            Cbor::Bytes(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend(bytes);
            }
            Cbor::Text(text) => {
                head(out, 3, text.len() as u64);
                out.extend(text.as_bytes());
            }
            Cbor::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (key, value) in entries {
                    key.encode(out);
                    value.encode(out);
                }
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url from the server")
}

/// One authenticator holding one credential once registered.
pub struct SoftPasskey {
    origin: String,
    key: PKey<Private>,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    /// The signature counter it reports next.
    pub counter: u32,
}

impl SoftPasskey {
    /// A new authenticator for pages served at `origin` (`PUBLIC_URL`).
    pub fn new(origin: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let credential_id: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
        Self {
            origin: origin.trim_end_matches('/').to_owned(),
            key,
            credential_id,
            user_handle: vec![],
            counter: 1,
        }
    }

    pub fn credential_id(&self) -> String {
        b64(&self.credential_id)
    }

    fn rp_id_hash(&self) -> Vec<u8> {
        let host = url::Url::parse(&self.origin).unwrap();
        Sha256::digest(host.host_str().unwrap().as_bytes()).to_vec()
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn cose_key(&self) -> Cbor {
        let ec = self.key.ec_key().unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        let mut ctx = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates_gfp(ec.group(), &mut x, &mut y, &mut ctx)
            .unwrap();
        Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),
            (Cbor::Int(3), Cbor::Int(-7)),
            (Cbor::Int(-1), Cbor::Int(1)),
            (Cbor::Int(-2), Cbor::Bytes(x.to_vec_padded(32).unwrap())),
            (Cbor::Int(-3), Cbor::Bytes(y.to_vec_padded(32).unwrap())),
        ])
    }

    /// `navigator.credentials.create()` for the server's creation options, as its JSON answer.
    pub fn register(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        let challenge = public_key["challenge"].as_str().expect("a challenge");
        self.user_handle = unb64(public_key["user"]["id"].as_str().expect("a user id"));
        let mut auth_data = self.rp_id_hash();
        auth_data.push(USER_PRESENT | USER_VERIFIED | ATTESTED_CREDENTIAL);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(uuid::Uuid::parse_str(AAGUID).unwrap().as_bytes());
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        self.cose_key().encode(&mut auth_data);
        let mut attestation = vec![];
        Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ])
        .encode(&mut attestation);
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&self.client_data("webauthn.create", challenge)),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get()` for the server's request options, as its JSON answer;
    /// the counter advances unless a test sets it back.
    pub fn assert(&mut self, options: &Value) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        self.counter += 1;
        let mut auth_data = self.rp_id_hash();
        auth_data.push(USER_PRESENT | USER_VERIFIED);
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(&signed).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

fn rand_byte() -> u8 {
    let mut byte = [0u8; 1];
    openssl::rand::rand_bytes(&mut byte).unwrap();
    byte[0]
}
