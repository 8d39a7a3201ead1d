//! The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once a second.
//!
//! The cache is a plain value owned by one thread (each worker thread has its own), so there is no
//! shared mutable state to race on. The caller supplies the time; this module reads no clock.

/// `Sun, 06 Nov 1994 08:49:37 GMT` is 29 bytes.
pub const DATE_LEN: usize = 29;

/// A formatted date, refreshed only when the second changes.
pub struct DateCache {
    secs: u64,
    text: [u8; DATE_LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        let mut cache = DateCache { secs: 0, text: [0; DATE_LEN] };
        format_imf_fixdate(0, &mut cache.text);
        cache
    }
}

impl DateCache {
    /// The date for `unix_secs`, formatting it only if the second differs from the last call.
    pub fn get(&mut self, unix_secs: u64) -> &[u8; DATE_LEN] {
        if unix_secs != self.secs {
            self.secs = unix_secs;
            format_imf_fixdate(unix_secs, &mut self.text);
        }
        &self.text
    }
}

/// Splits a day count since 1970-01-01 into (year, month 1-12, day 1-31); Howard Hinnant's
/// `civil_from_days`, valid for every date a clock will show.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];

fn format_imf_fixdate(unix_secs: u64, out: &mut [u8; DATE_LEN]) {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[0..3].copy_from_slice(WEEKDAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(u64::from(day)));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    out[11] = b' ';
    let y = year as u64;
    out[12..14].copy_from_slice(&two(y / 100));
    out[14..16].copy_from_slice(&two(y % 100));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(rem / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(rem / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(rem % 60));
    out[25..29].copy_from_slice(b" GMT");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_example() {
        let mut cache = DateCache::default();
        assert_eq!(cache.get(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn formats_epoch_and_leap_day() {
        let mut cache = DateCache::default();
        assert_eq!(cache.get(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(cache.get(1_709_164_800), b"Thu, 29 Feb 2024 00:00:00 GMT");
    }
}
