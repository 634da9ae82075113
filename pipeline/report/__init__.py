"""Commission reports: queries (sql/reports) → one `Report` → xlsx, csv and html writers."""
