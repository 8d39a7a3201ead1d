//! RFC 7541 (HPACK) through the connection: the representations a decoder must accept (h2spec's
//! `generic/5`) and the decoding errors it must treat as COMPRESSION_ERROR (h2spec's `hpack/*`; RFC
//! 9113 §4.3 makes every one a connection error).

use super::*;

/// `:method: GET`, `:scheme: http`, `:path: /` from the static table, then `rep`.
fn get_then(rep: &[u8]) -> Outcome {
    let mut block = vec![0x82, 0x86, 0x84];
    block.extend_from_slice(rep);
    run(Client::new().frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block))
}

/// `rep` before the `:method: GET`, `:scheme: http`, `:path: /` of the static table.
fn then_get(rep: &[u8]) -> Outcome {
    let mut block = rep.to_vec();
    block.extend_from_slice(&[0x82, 0x86, 0x84]);
    run(Client::new().frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block))
}

/// The request's fields after the three pseudo-headers.
fn extra(out: &Outcome) -> Vec<(String, String)> {
    let Some(Event::Request { stream: 1, fields, .. }) = out.events.first() else {
        panic!("{:?}", out.kinds())
    };
    fields[3..]
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into(), String::from_utf8_lossy(v).into()))
        .collect()
}

fn field(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.into(), value.into())]
}

#[test]
fn hpack_6_1_indexed_field_is_accepted() {
    // h2spec generic/5/1: 0xba is the static table's 58, `user-agent` with no value.
    assert_eq!(extra(&get_then(b"\xba")), field("user-agent", ""));
}

#[test]
fn hpack_6_2_1_literal_with_incremental_indexing_user_agent_is_accepted() {
    // h2spec generic/5/2.
    assert_eq!(
        extra(&get_then(b"\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_1_literal_with_incremental_indexing_user_agent_huffman_is_accepted() {
    // h2spec generic/5/3.
    assert_eq!(
        extra(&get_then(b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_1_literal_with_incremental_indexing_new_name_is_accepted() {
    // h2spec generic/5/4.
    assert_eq!(
        extra(&get_then(b"\x40\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_1_literal_with_incremental_indexing_new_name_huffman_is_accepted() {
    // h2spec generic/5/5.
    assert_eq!(
        extra(&get_then(b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_2_literal_without_indexing_user_agent_is_accepted() {
    // h2spec generic/5/6.
    assert_eq!(
        extra(&get_then(b"\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_2_literal_without_indexing_user_agent_huffman_is_accepted() {
    // h2spec generic/5/7.
    assert_eq!(
        extra(&get_then(b"\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_2_literal_without_indexing_new_name_is_accepted() {
    // h2spec generic/5/8.
    assert_eq!(
        extra(&get_then(b"\x00\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_2_literal_without_indexing_new_name_huffman_is_accepted() {
    // h2spec generic/5/9.
    assert_eq!(
        extra(&get_then(b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_3_literal_never_indexed_user_agent_is_accepted() {
    // h2spec generic/5/10.
    assert_eq!(
        extra(&get_then(b"\x10\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_3_literal_never_indexed_user_agent_huffman_is_accepted() {
    // h2spec generic/5/11.
    assert_eq!(
        extra(&get_then(b"\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")),
        field("user-agent", "h2spec")
    );
}

#[test]
fn hpack_6_2_3_literal_never_indexed_new_name_is_accepted() {
    // h2spec generic/5/12.
    assert_eq!(
        extra(&get_then(b"\x10\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_3_literal_never_indexed_new_name_huffman_is_accepted() {
    // h2spec generic/5/13.
    assert_eq!(
        extra(&get_then(b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")),
        field("x-test", "h2spec")
    );
}

#[test]
fn hpack_6_2_1_literal_with_incremental_indexing_is_indexed() {
    // The entry is 62 at once, and may be named in the same block.
    let twice = [field("x-test", "1"), field("x-test", "1")].concat();
    assert_eq!(extra(&get_then(b"\x40\x06\x78\x2d\x74\x65\x73\x74\x01\x31\xbe")), twice);
}

#[test]
fn hpack_6_3_dynamic_table_size_update_is_accepted() {
    // h2spec generic/5/14: an update to 4,096 at the start of the block.
    assert!(then_get(b"\x3f\xe1\x1f").accepted());
}

#[test]
fn hpack_4_2_multiple_dynamic_table_size_updates_are_accepted() {
    // h2spec generic/5/15: 128, then 4,096.
    assert!(then_get(b"\x3f\x61\x3f\xe1\x1f").accepted());
}

#[test]
fn hpack_2_3_3_indexed_field_with_invalid_index_is_compression_error() {
    // h2spec hpack/2.3.3/1: index 70, past the static table and an empty dynamic one.
    assert_eq!(get_then(b"\xc6").goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_2_3_3_literal_with_invalid_name_index_is_compression_error() {
    // h2spec hpack/2.3.3/2.
    assert_eq!(get_then(b"\x7f\x07\x00").goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_4_2_dynamic_table_size_update_at_the_end_of_a_block_is_compression_error() {
    // h2spec hpack/4.2/1: an update must come first in a block.
    assert_eq!(get_then(b"\x21").goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_5_2_huffman_padding_longer_than_7_bits_is_compression_error() {
    // h2spec hpack/5.2/1.
    assert_eq!(
        get_then(b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff").goaway(),
        Some(ErrorCode::Compression)
    );
}

#[test]
fn hpack_5_2_huffman_padded_by_zero_is_compression_error() {
    // h2spec hpack/5.2/2: padding must be the EOS code's most significant bits (ones).
    assert_eq!(
        get_then(b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90").goaway(),
        Some(ErrorCode::Compression)
    );
}

#[test]
fn hpack_5_2_huffman_containing_eos_is_compression_error() {
    // h2spec hpack/5.2/3.
    let rep = b"\x00\x85\xf2\xb2\x4a\x84\xff\x87\x49\x51\xff\xff\xff\xfa\x7f";
    assert_eq!(get_then(rep).goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_6_1_indexed_field_with_index_0_is_compression_error() {
    // h2spec hpack/6.1/1.
    assert_eq!(get_then(b"\x80").goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_6_3_size_update_above_settings_header_table_size_is_compression_error() {
    // h2spec hpack/6.3/1: 4,097 against the 4,096 we allow (the default: we announce no other).
    assert_eq!(then_get(b"\x3f\xe2\x1f").goaway(), Some(ErrorCode::Compression));
}

#[test]
fn hpack_4_3_a_block_that_fails_to_decode_loses_the_connection_not_the_stream() {
    // RFC 9113 §4.3: the table is lost with it, so no stream error is enough.
    let out = run(Client::new().get(1).frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        b"\x82\x86\xc6",
    ));
    assert_eq!(out.goaway(), Some(ErrorCode::Compression));
    assert_eq!(out.goaway_last_stream(), 1);
}
