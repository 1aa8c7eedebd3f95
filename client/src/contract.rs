//! Contract artifacts as cargo-contract writes them, and the ink! ABI on the wire: a 4-byte
//! selector followed by SCALE-encoded arguments; return values wrapped in `Result<T, LangError>`.

use crate::{Error, Result, H256};
use codec::{Decode, Encode};
use serde_json::Value;
use std::path::Path;

/// A built contract: its PolkaVM code and its metadata.
#[derive(Debug, Clone)]
pub struct ContractArtifact {
    /// Contract name from the metadata.
    pub name: String,
    /// The `.polkavm` program.
    pub code: Vec<u8>,
    /// The ink! metadata.
    pub metadata: ContractMetadata,
}

impl ContractArtifact {
    /// Load a `.contract` bundle: metadata JSON whose `source.contract_binary` holds the code.
    pub fn load(bundle: &Path) -> Result<Self> {
        let json = read_json(bundle)?;
        let code_hex = json
            .pointer("/source/contract_binary")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Metadata(format!("{}: no source.contract_binary", bundle.display())))?;
        let code = hex::decode(code_hex.trim_start_matches("0x"))
            .map_err(|e| Error::Metadata(format!("{}: contract_binary: {e}", bundle.display())))?;
        Self::from_parts(code, json)
    }

    /// Load the `.polkavm` program and its `.json` metadata from beside each other.
    pub fn from_files(code: &Path, metadata: &Path) -> Result<Self> {
        let bytes = std::fs::read(code).map_err(|source| Error::Io { path: code.display().to_string(), source })?;
        Self::from_parts(bytes, read_json(metadata)?)
    }

    fn from_parts(code: Vec<u8>, json: Value) -> Result<Self> {
        if !code.starts_with(b"PVM\0") {
            return Err(Error::Metadata("the code is not a PolkaVM program (no PVM magic)".into()));
        }
        let name = json
            .pointer("/contract/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Metadata("no contract.name".into()))?
            .to_string();
        Ok(Self { name, code, metadata: ContractMetadata { json } })
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Metadata(format!("{}: {e}", path.display())))
}

/// The parts of ink! metadata the client uses: selectors and event signature topics.
#[derive(Debug, Clone)]
pub struct ContractMetadata {
    json: Value,
}

impl ContractMetadata {
    /// Metadata from its JSON text.
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map(|json| Self { json }).map_err(|e| Error::Metadata(e.to_string()))
    }

    fn entry(&self, kind: &str, label: &str) -> Result<&Value> {
        self.json
            .pointer(&format!("/spec/{kind}"))
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Metadata(format!("no spec.{kind}")))?
            .iter()
            .find(|entry| entry.get("label").and_then(Value::as_str) == Some(label))
            .ok_or_else(|| Error::Metadata(format!("no {kind} entry labelled `{label}`")))
    }

    fn selector(&self, kind: &str, label: &str) -> Result<Selector> {
        let hex = self
            .entry(kind, label)?
            .get("selector")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Metadata(format!("`{label}` has no selector")))?;
        Selector::from_hex(hex)
    }

    /// The selector of constructor `label`.
    pub fn constructor(&self, label: &str) -> Result<Selector> {
        self.selector("constructors", label)
    }

    /// The selector of message `label`.
    pub fn message(&self, label: &str) -> Result<Selector> {
        self.selector("messages", label)
    }

    /// The signature topic of event `label`: the first topic of every such event (`None` for an
    /// anonymous event).
    pub fn event_topic(&self, label: &str) -> Result<Option<H256>> {
        match self.entry("events", label)?.get("signature_topic") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(hex)) => {
                let bytes = hex::decode(hex.trim_start_matches("0x"))
                    .map_err(|e| Error::Metadata(format!("event `{label}` topic: {e}")))?;
                let bytes: [u8; 32] =
                    bytes.try_into().map_err(|_| Error::Metadata(format!("event `{label}` topic is not 32 bytes")))?;
                Ok(Some(H256::from(bytes)))
            }
            Some(other) => Err(Error::Metadata(format!("event `{label}` topic: {other}"))),
        }
    }
}

/// The 4-byte selector of a constructor or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector(pub [u8; 4]);

impl Selector {
    /// A selector from its `0x`-prefixed hex form, as metadata writes it.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let bytes =
            hex::decode(hex.trim_start_matches("0x")).map_err(|e| Error::Metadata(format!("selector `{hex}`: {e}")))?;
        bytes.try_into().map(Self).map_err(|_| Error::Metadata(format!("selector `{hex}` is not 4 bytes")))
    }

    /// Start the call data of this constructor or message.
    pub fn call(self) -> CallData {
        CallData(self.0.to_vec())
    }
}

/// Call data: a selector followed by the SCALE encoding of each argument, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallData(Vec<u8>);

impl CallData {
    /// Append one argument.
    pub fn arg<T: Encode>(mut self, value: &T) -> Self {
        value.encode_to(&mut self.0);
        self
    }

    /// Call data someone else built (a wallet signing what the members' API prepared).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to send.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl From<CallData> for Vec<u8> {
    fn from(data: CallData) -> Self {
        data.0
    }
}

/// ink!'s `LangError`: the message was not dispatched at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Decode, Encode)]
pub enum LangError {
    /// The input could not be decoded (unknown selector or malformed arguments).
    #[codec(index = 1)]
    CouldNotReadInput,
}

/// Decode what an ink! message or constructor returned: `Result<T, LangError>`.
pub fn decode_return<T: Decode>(data: &[u8]) -> Result<T> {
    let mut input = data;
    let value = <core::result::Result<T, LangError>>::decode(&mut input)
        .map_err(|e| Error::decode("contract return value", e))?;
    if !input.is_empty() {
        return Err(Error::decode("contract return value", format!("{} trailing bytes", input.len())));
    }
    value.map_err(|e| Error::Lang(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{
        "contract": {"name": "demo", "version": "0.1.0"},
        "spec": {
            "constructors": [{"label": "new", "selector": "0x9bae9d5e"}],
            "messages": [{"label": "anchor", "selector": "0x01020304"}],
            "events": [
                {"label": "Anchored", "signature_topic": "0x1111111111111111111111111111111111111111111111111111111111111111"},
                {"label": "Quiet", "signature_topic": null}
            ]
        }
    }"#;

    #[test]
    fn selectors_and_topics_come_from_metadata() {
        let metadata = ContractMetadata::parse(METADATA).unwrap();
        assert_eq!(metadata.constructor("new").unwrap(), Selector([0x9b, 0xae, 0x9d, 0x5e]));
        assert_eq!(metadata.message("anchor").unwrap(), Selector([1, 2, 3, 4]));
        assert_eq!(metadata.event_topic("Anchored").unwrap(), Some(H256::from([0x11; 32])));
        assert_eq!(metadata.event_topic("Quiet").unwrap(), None);
        let missing = metadata.message("nope").unwrap_err().to_string();
        assert!(missing.contains("no messages entry labelled `nope`"), "{missing}");
    }

    #[test]
    fn call_data_is_selector_then_scale_arguments() {
        let data = Selector([1, 2, 3, 4]).call().arg(&7u64).arg(&true).into_bytes();
        assert_eq!(data, [&[1, 2, 3, 4][..], &7u64.encode(), &[1]].concat());
    }

    #[test]
    fn return_values_unwrap_the_lang_result() {
        let ok: core::result::Result<u32, LangError> = Ok(5);
        assert_eq!(decode_return::<u32>(&ok.encode()).unwrap(), 5);
        let lang: core::result::Result<u32, LangError> = Err(LangError::CouldNotReadInput);
        assert!(matches!(decode_return::<u32>(&lang.encode()), Err(Error::Lang(_))));
        let mut trailing = ok.encode();
        trailing.push(0);
        assert!(matches!(decode_return::<u32>(&trailing), Err(Error::Decode { .. })));
    }

    #[test]
    fn code_without_polkavm_magic_is_refused() {
        let json: Value = serde_json::from_str(METADATA).unwrap();
        let error = ContractArtifact::from_parts(b"\0asm".to_vec(), json).unwrap_err();
        assert!(error.to_string().contains("not a PolkaVM program"), "{error}");
    }
}
