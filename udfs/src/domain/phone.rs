//! Mainland Chinese mobile numbers: 11 digits whose first three are an allocated mobile
//! prefix (13x-19x, not every one of them), optionally written after `+86`.

/// The country code accepted in front of a number.
pub const CHINA_PREFIX: &str = "+86";

/// [`CHINA_PREFIX`] as an array, compared in place: `strip_prefix` can compile to
/// out-of-line calls (`starts_with`, `memcmp`), which in one build of the crate cost
/// `phone_valid` 40% of its speed.
const PREFIX_BYTES: [u8; 3] = *CHINA_PREFIX.as_bytes().first_chunk().unwrap();

/// Allocated 11-digit mobile prefixes, as a bit set of the third digit per second digit
/// (index 0 is 1**0**x … index 6 is 1**9**x).
///
/// 140 and 144 are 13-digit IoT ranges; 142, 143, 154, 160, 161, 163, 164, 168, 169, 179 and
/// 194 are not allocated to mobile services.
const ALLOCATED: [u16; 7] = [
    0b11_1111_1111, // 130-139 (1349 is satellite, still a mobile number)
    0b11_1110_0010, // 141, 145-149
    0b11_1110_1111, // 150-153, 155-159
    0b00_1110_0100, // 162, 165-167
    0b01_1111_1111, // 170-178
    0b11_1111_1111, // 180-189
    0b11_1110_1111, // 190-193, 195-199
];

/// Whether the three digits `1`, `second`, `third` (ASCII) start an allocated mobile number.
pub fn is_mobile_prefix(second: u8, third: u8) -> bool {
    if !(b'3'..=b'9').contains(&second) || !third.is_ascii_digit() {
        return false;
    }
    ALLOCATED[usize::from(second - b'3')] & (1 << (third - b'0')) != 0
}

/// Whether `s` is a mainland mobile number: 11 ASCII digits (after an optional `+86`, with
/// no spaces or dashes) starting with an allocated prefix.
pub fn is_valid(s: &str) -> bool {
    let b = match s.as_bytes().split_first_chunk() {
        Some((prefix, rest)) if *prefix == PREFIX_BYTES => rest,
        _ => s.as_bytes(),
    };
    b.len() == 11
        && b[0] == b'1'
        && is_mobile_prefix(b[1], b[2])
        && b.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};

    #[test]
    fn every_mobile_vector_validates() {
        for case in cases("mobile") {
            let input = str_field(case, "input");
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(is_valid(input), valid, "{input}: {}", case["note"]);
        }
    }

    #[test]
    fn allocation_table_by_prefix() {
        let allocated: Vec<u32> = (100..200)
            .filter(|p| {
                let d = p.to_string().into_bytes();
                is_mobile_prefix(d[1], d[2])
            })
            .collect();
        let mut expected: Vec<u32> = (130..=139).collect();
        expected.extend([141, 145, 146, 147, 148, 149]);
        expected.extend([150, 151, 152, 153, 155, 156, 157, 158, 159]);
        expected.extend([162, 165, 166, 167]);
        expected.extend(170..=178);
        expected.extend(180..=189);
        expected.extend([190, 191, 192, 193, 195, 196, 197, 198, 199]);
        assert_eq!(allocated, expected);
    }

    #[test]
    fn formats_other_than_digits_are_refused() {
        assert!(is_valid("13812341234"));
        assert!(is_valid("+8613812341234"));
        for s in [
            "",
            "+86",
            "8613812341234",
            "+86 13812341234",
            "138-1234-1234",
            "1381234123a",
            "２3812341234",
            "+8523812341234",
            "23812341234",
        ] {
            assert!(!is_valid(s), "{s}");
        }
    }
}
