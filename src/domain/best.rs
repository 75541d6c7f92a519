//! Best-available: which `count` seats to hold for a buyer who asks for "N together, as good as
//! possible". The rule (the same in `lua/best.lua`, which decides for Redis holds; this function
//! decides for Postgres holds and is the reference the script is tested against):
//!
//! 1. `count` adjacent eligible seats in one row that leave **no orphan**: no run of exactly one
//!    free seat next to the block (between it and a taken seat, an aisle or the row's end);
//!    among those the first row, and within it the block whose middle is nearest the row's
//!    middle (ties: the lower numbers);
//! 2. if none exists, the same without the orphan rule;
//! 3. else none, with the number of eligible seats available.
//!
//! Adjacent: the same row, numbers differing by one (a gap in the numbering is an aisle). Free:
//! neither sold nor held. Eligible: free and matching the request's type and price limit. No I/O.

/// One seat of a row, in number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub code: String,
    pub number: i32,
    pub free: bool,
    pub eligible: bool,
}

/// What best-available chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestChoice {
    /// These seats, in number order.
    Seats(Vec<String>),
    /// No block of `count`; this many eligible seats are available.
    NoBlock { available: u32 },
}

/// A request's filters: a seat type and a price limit (cents), each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BestFilter {
    pub seat_type: Option<String>,
    pub max_price_cents: Option<i64>,
}

impl BestFilter {
    pub fn accepts(&self, seat_type: &str, price_cents: i64) -> bool {
        self.seat_type.as_deref().is_none_or(|t| t == seat_type)
            && self.max_price_cents.is_none_or(|max| price_cents <= max)
    }
}

/// Whether the block `k..k+count` of `row` is all eligible and consecutive by number.
fn is_block(row: &[Slot], k: usize, count: usize) -> bool {
    (0..count)
        .all(|j| row[k + j].eligible && (j == 0 || row[k + j].number == row[k + j - 1].number + 1))
}

/// Whether slot `i` is free and the free run it belongs to, away from the block, is one seat.
fn lone(row: &[Slot], i: usize, toward_block: usize) -> bool {
    let next = |a: usize, b: usize| row[a].number.abs_diff(row[b].number) == 1;
    if !row[i].free || !next(i, toward_block) {
        return false;
    }
    // The seat on the far side of `i`, if adjacent and free, makes the run longer than one.
    let far = if i < toward_block {
        i.checked_sub(1)
    } else {
        Some(i + 1).filter(|&f| f < row.len())
    };
    !far.is_some_and(|f| next(f, i) && row[f].free)
}

/// Whether taking `k..k+count` leaves a lone free seat on either side.
fn leaves_orphan(row: &[Slot], k: usize, count: usize) -> bool {
    let last = k + count - 1;
    (k > 0 && lone(row, k - 1, k)) || (last + 1 < row.len() && lone(row, last + 1, last))
}

/// The best block of `row` (its first index), by distance of its middle to the row's middle.
fn best_in_row(row: &[Slot], count: usize, no_orphan: bool) -> Option<usize> {
    if row.len() < count || count == 0 {
        return None;
    }
    let middle2 = i64::from(row[0].number) + i64::from(row[row.len() - 1].number);
    (0..=row.len() - count)
        .filter(|&k| is_block(row, k, count))
        .filter(|&k| !no_orphan || !leaves_orphan(row, k, count))
        .min_by_key(|&k| {
            let block2 = i64::from(row[k].number) + i64::from(row[k + count - 1].number);
            ((block2 - middle2).abs(), k)
        })
}

/// Chooses `count` seats among `rows` (in creation order, each in number order).
pub fn choose_best(rows: &[Vec<Slot>], count: usize) -> BestChoice {
    for no_orphan in [true, false] {
        for row in rows {
            if let Some(k) = best_in_row(row, count, no_orphan) {
                return BestChoice::Seats(
                    row[k..k + count].iter().map(|s| s.code.clone()).collect(),
                );
            }
        }
    }
    let available = rows.iter().flatten().filter(|s| s.eligible).count();
    BestChoice::NoBlock {
        available: available.min(u32::MAX as usize) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row from a picture: `.` free, `x` taken, `_` an aisle (a skipped number), `$` free but
    /// not eligible. Seats are numbered from 1 and coded `{row}{number}`.
    fn row(name: &str, picture: &str) -> Vec<Slot> {
        let mut number = 0;
        let mut out = Vec::new();
        for c in picture.chars() {
            number += 1;
            if c == '_' {
                continue;
            }
            out.push(Slot {
                code: format!("{name}{number}"),
                number,
                free: c == '.' || c == '$',
                eligible: c == '.',
            });
        }
        out
    }

    fn seats(codes: &[&str]) -> BestChoice {
        BestChoice::Seats(codes.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn the_middle_of_the_first_row_that_fits_wins() {
        let rows = [
            row("A", "xxxxxxxx"),
            row("B", "........"),
            row("C", "........"),
        ];
        assert_eq!(choose_best(&rows, 2), seats(&["B4", "B5"]));
        assert_eq!(
            choose_best(&rows, 3),
            seats(&["B3", "B4", "B5"]),
            "tie: lower numbers"
        );
    }

    #[test]
    fn a_block_that_would_leave_one_lone_seat_is_avoided_while_another_exists() {
        // In A, any 2 of the 3 free seats leaves one alone; B has 4 free in a row.
        let rows = [row("A", "x...xxxx"), row("B", "xx....xx")];
        assert_eq!(choose_best(&rows, 2), seats(&["B3", "B4"]));
        // With no orphan-free block anywhere, the first row's best block is taken anyway: of
        // 2-3 and 3-4, the one whose middle is nearer the row's (4.5).
        let rows = [row("A", "x...xxxx"), row("B", "x...xxxx")];
        assert_eq!(choose_best(&rows, 2), seats(&["A3", "A4"]));
    }

    #[test]
    fn an_aisle_breaks_adjacency_and_is_no_orphan_maker() {
        // 1 2 3 | 5 6 7: the block 5-6 would leave 7 alone; 6-7 leaves 5 alone next to the
        // aisle... also alone; 1-2 leaves 3 alone: only 2-3 (leaving 1 alone) ... every block
        // strands a seat, so the second pass picks the one nearest the middle (numbers 1..7,
        // middle 4): 2-3 and 5-6 are both 1.5 away; the lower numbers win.
        let rows = [row("A", "..._...")];
        assert_eq!(choose_best(&rows, 2), seats(&["A2", "A3"]));
        // Three together cannot span the aisle.
        assert_eq!(choose_best(&rows, 3), seats(&["A1", "A2", "A3"]));
        assert_eq!(
            choose_best(&[row("A", ".._..")], 3),
            BestChoice::NoBlock { available: 4 }
        );
    }

    #[test]
    fn filters_make_seats_ineligible_but_they_still_count_for_orphans() {
        // $ seats are free but not eligible: 2-3 would leave the $ at 1 alone, 6-7 the seat at
        // 5; 5-6 and 7-8 leave none, and 5-6 is nearer the middle.
        let rows = [row("A", "$..x....")];
        assert_eq!(choose_best(&rows, 2), seats(&["A5", "A6"]));
        assert_eq!(
            choose_best(&[row("A", "$$$$")], 1),
            BestChoice::NoBlock { available: 0 }
        );
    }

    #[test]
    fn filters_accept_by_type_and_price() {
        let f = BestFilter {
            seat_type: Some("VIP".into()),
            max_price_cents: Some(5000),
        };
        assert!(f.accepts("VIP", 5000));
        assert!(!f.accepts("VIP", 5001));
        assert!(!f.accepts("STANDARD", 100));
        assert!(BestFilter::default().accepts("ANY", i64::MAX));
    }
}
