//! The gRPC request decoding paths: the bytes of an `UpdateResourceRequest` and of a
//! `CommitRequest` as tonic decodes them, and `Any` payloads into the flag and segment
//! conversions (`storage_grpc::core_convert`). Nothing panics; whatever converts is written
//! back and converts to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use storage_grpc::core_convert::{Decoded, flag_to_any, resource_from_any, segment_to_any};
use storage_proto::environments::UpdateResourceRequest;
use storage_proto::flipt::storage::v1::CommitRequest;

fn to_any(d: &Decoded) -> prost_types::Any {
    match d {
        Decoded::Flag(f) => flag_to_any(f),
        Decoded::Segment(s) => segment_to_any(s),
    }
}

fn check(any: &prost_types::Any) {
    if let Ok(decoded) = resource_from_any(any) {
        let written = to_any(&decoded);
        let again = resource_from_any(&written)
            .unwrap_or_else(|e| panic!("a converted resource does not convert again: {e}"));
        assert_eq!(written.value, to_any(&again).value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => check(&prost_types::Any {
            type_url: "flipt.core.Flag".into(),
            value: rest.to_vec(),
        }),
        1 => check(&prost_types::Any {
            type_url: "type.googleapis.com/flipt.core.Segment".into(),
            value: rest.to_vec(),
        }),
        2 => {
            if let Ok(req) = UpdateResourceRequest::decode(rest)
                && let Some(payload) = &req.payload
            {
                check(payload);
            }
        }
        _ => {
            let _ = CommitRequest::decode(rest);
        }
    }
});
