//! When the treasurer pays sellers (`PAYOUT_SCHEDULE`): the days of the week a payout run
//! is made, and so the date a seller is promised. Pure: dates are Hà Nội days.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// The run days, Monday first. `daily` is every day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    days: Vec<Weekday>,
}

impl Default for Schedule {
    /// Every Monday.
    fn default() -> Self {
        Schedule {
            days: vec![Weekday::Mon],
        }
    }
}

impl Schedule {
    /// `mon`, `mon,thu`, `daily` (English day names, three letters or whole, any case).
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "daily" {
            return Ok(Schedule {
                days: (0..7)
                    .map(|d| Weekday::try_from(d as u8).expect("0..7"))
                    .collect(),
            });
        }
        let mut days = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let day: Weekday = part
                .parse()
                .map_err(|_| format!("“{part}” is not a day of the week (mon … sun, or daily)"))?;
            if !days.contains(&day) {
                days.push(day);
            }
        }
        if days.is_empty() {
            return Err("name at least one day (mon … sun), or daily".into());
        }
        days.sort_by_key(|d| d.num_days_from_monday());
        Ok(Schedule { days })
    }

    /// The next run day on or after `from` (a run on `from` itself counts when `ran` is
    /// false: today's run has not been made yet).
    pub fn next_run(&self, from: NaiveDate, ran: bool) -> NaiveDate {
        let start = if ran { 1 } else { 0 };
        (start..start + 8)
            .map(|d| from + Duration::days(d))
            .find(|d| self.days.contains(&d.weekday()))
            .expect("a week holds every weekday")
    }

    /// The first run day after `held_until`'s day (the promise stays on the safe side:
    /// never a run that could start before the hold ends).
    pub fn first_after(&self, day: NaiveDate) -> NaiveDate {
        self.next_run(day, true)
    }

    /// "thứ Hai", "thứ Hai và thứ Năm", "hằng ngày".
    pub fn words(&self) -> String {
        if self.days.len() == 7 {
            return "hằng ngày".into();
        }
        let names: Vec<&str> = self.days.iter().map(|d| weekday_vi(*d)).collect();
        names.join(" và ")
    }
}

/// Vietnamese weekday names as on a calendar.
pub fn weekday_vi(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "thứ Hai",
        Weekday::Tue => "thứ Ba",
        Weekday::Wed => "thứ Tư",
        Weekday::Thu => "thứ Năm",
        Weekday::Fri => "thứ Sáu",
        Weekday::Sat => "thứ Bảy",
        Weekday::Sun => "Chủ nhật",
    }
}

/// "thứ Hai 07/12".
pub fn day_words(d: NaiveDate) -> String {
    format!("{} {}", weekday_vi(d.weekday()), d.format("%d/%m"))
}

/// The Hà Nội day of a stored UTC time.
pub fn vn_day(ms: i64) -> NaiveDate {
    crate::domain::vn_date(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn parses_days_and_refuses_nonsense() {
        assert_eq!(Schedule::parse("mon").unwrap(), Schedule::default());
        assert_eq!(
            Schedule::parse(" Thu, monday ,thu").unwrap().words(),
            "thứ Hai và thứ Năm"
        );
        assert_eq!(Schedule::parse("daily").unwrap().words(), "hằng ngày");
        assert!(Schedule::parse("").is_err());
        assert!(
            Schedule::parse("mon,someday")
                .unwrap_err()
                .contains("someday")
        );
    }

    #[test]
    fn the_next_run_counts_today_until_it_ran() {
        let s = Schedule::default();
        // 2026-12-07 is a Monday.
        assert_eq!(s.next_run(d("2026-12-07"), false), d("2026-12-07"));
        assert_eq!(s.next_run(d("2026-12-07"), true), d("2026-12-14"));
        assert_eq!(s.next_run(d("2026-12-06"), false), d("2026-12-07"));
        assert_eq!(s.next_run(d("2026-12-08"), false), d("2026-12-14"));
        let twice = Schedule::parse("mon,thu").unwrap();
        assert_eq!(twice.next_run(d("2026-12-08"), false), d("2026-12-10"));
        // A hold ending on a Monday: that Monday's run may come before it ends.
        assert_eq!(s.first_after(d("2026-12-07")), d("2026-12-14"));
        assert_eq!(day_words(d("2026-12-07")), "thứ Hai 07/12");
    }
}
