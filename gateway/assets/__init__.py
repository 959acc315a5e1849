"""Static assets shipped with the package: fonts for PDF notices (see LICENSE-DejaVu.txt)."""
