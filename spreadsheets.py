"""Spreadsheet files: CSV and XLSX writers that stream rows in constant memory, a small
workbook for a report, and the neutralising of cells a spreadsheet would run as formulas.
No words of their own: headers, sheet names and labels come translated from the caller.
"""
from __future__ import annotations

import csv
import datetime as dt
import io

# Characters that make a spreadsheet evaluate a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class CsvWriter:
    """UTF-8 with a BOM (Excel opens Chinese correctly); numbers plain, dates ISO."""

    def __init__(self, out, headers):
        self.text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=False)
        self.csv = csv.writer(self.text)
        self.csv.writerow(headers)

    def row(self, values, bold=False):
        self.csv.writerow(values)  # csv writes None as an empty cell

    def close(self):
        self.text.flush()
        self.text.detach()


class XlsxWriter:
    """XlsxWriter in constant-memory mode: each row goes to disk as it is written. One writer
    function per column, chosen once: money and dates as numbers with a format (a date as its
    Excel serial day), other numbers as numbers, the rest as text."""

    EPOCH = dt.date(1899, 12, 30)

    def __init__(self, out, headers, money, dates, sheet: str):
        import xlsxwriter
        self.book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False,
                                              "strings_to_formulas": False, "strings_to_urls": False,
                                              "strings_to_numbers": False})
        sheet = self.sheet = self.book.add_worksheet(sheet)
        bold = self.book.add_format({"bold": True})
        money_format = self.book.add_format({"num_format": "#,##0.00"})
        self.bold_money = self.book.add_format({"num_format": "#,##0.00", "bold": True})
        self.bold = bold
        date_format = self.book.add_format({"num_format": "yyyy-mm-dd"})
        epoch = self.EPOCH

        def text(n, col, value):
            if value.__class__ is str:
                if value:
                    sheet.write_string(n, col, value)
            elif value is not None:
                sheet.write_number(n, col, value)

        def amount(n, col, value):
            sheet.write_number(n, col, float(value), money_format)

        def day(n, col, value):
            if value is not None:
                sheet.write_number(n, col, (value - epoch).days, date_format)

        self.writers = [amount if i in money else day if i in dates else text for i in range(len(headers))]
        self.money, self.n = set(money), 1
        for col, header in enumerate(headers):
            sheet.write_string(0, col, header, bold)
            sheet.set_column(col, col, 14)

    def row(self, values, bold=False):
        n = self.n
        if bold:  # the totals row
            for col, value in enumerate(values):
                if value is not None:
                    if col in self.money:
                        self.sheet.write_number(n, col, float(value), self.bold_money)
                    else:
                        self.sheet.write_string(n, col, str(value), self.bold)
        else:
            for col, (write, value) in enumerate(zip(self.writers, values)):
                write(n, col, value)
        self.n = n + 1

    def close(self):
        self.book.close()


def write_table_xlsx(out, sheet_name: str, title: str, columns: list[tuple], rows: list[dict],
                     more: list[tuple] = ()) -> None:
    """A one-sheet workbook in memory: `title` in bold, the headers of `columns` ((key, header,
    kind): None for text, "int", "rate" or "money") in bold on row 3, then a row per dict of
    `rows`, the last (the totals) in bold; text neutralised, numbers as numbers. `more`: further
    sheets, each (sheet name, title, columns, rows), written the same way."""
    import xlsxwriter

    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    for name, heading, cols, lines in ((sheet_name, title, columns, rows), *more):
        _write_sheet(book.add_worksheet(name), bold, money, heading, cols, lines)
    book.close()


def _write_sheet(sheet, bold, money, title: str, columns: list[tuple], rows: list[dict]) -> None:
    sheet.write_string(0, 0, title, bold)
    for col, (_, header, _) in enumerate(columns):
        sheet.write_string(2, col, header, bold)
        sheet.set_column(col, col, 13)
    for n, row in enumerate(rows, start=3):
        for col, (key, _, kind) in enumerate(columns):
            value = row.get(key)
            if value is None:
                continue
            if kind is None:
                sheet.write_string(n, col, neutralise_formula(str(value)), bold if row is rows[-1] else None)
            else:
                sheet.write_number(n, col, float(value), money if kind == "money" else None)
