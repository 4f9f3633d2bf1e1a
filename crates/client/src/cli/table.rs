//! Plain-text tables for terminals.
//!
//! In: a header and rows of cells. Out: left-aligned columns two spaces
//! apart, sized to their widest cell (in characters), no trailing spaces.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn push(&mut self, row: Vec<String>) {
        let mut row = row;
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[column] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut table = Table::new(["MEMBER", "TERM"]);
        table.push(vec!["n1*".into(), "12".into()]);
        table.push(vec!["station-two".into(), "7".into()]);
        table.push(vec!["é".into()]);
        let expected = "MEMBER       TERM\nn1*          12\nstation-two  7\né\n";
        assert_eq!(table.render(), expected);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(["A", "B"]).render(), "A  B\n");
    }
}
