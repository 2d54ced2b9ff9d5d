"""Payment descriptions (Vietnamese, without diacritics as most banking apps send them)."""

DESCRIPTIONS = (
    "Thanh toan QR",  # 0 purchase
    "Chuyen tien",  # 1 p2p
    "Thanh toan the",  # 2 pos
    "Rut tien ATM",  # 3 atm
    "Nap tien vi dien tu",  # 4 top-up
    "Tra luong thang",  # 5 salary
    "Thanh toan hoa don dien nuoc internet",  # 6 bill
    "Bo me gui tien sinh hoat",  # 7 allowance
    "Luong huu BHXH",  # 8 pension
    "Thanh toan hoa don GTGT",  # 9 invoice
    "Thanh toan nha cung cap",  # 10 supplier
    "Li xi Tet",  # 11 lucky money
    "Dat coc mua nha",  # 12 house deposit
    "Mua xe may",  # 13 motorbike
    "Thuong Tet",  # 14 Tết bonus
    "Hoan tien",  # 15 refund (fraud cover story)
    "Dau tu sinh loi",  # 16 investment (scam)
    "Nop phi ho so",  # 17 fee (scam)
    "Thanh toan don hang",  # 18 order payment
    "Chuyen khoan",  # 19 generic
)
(PURCHASE, P2P, POS_TXT, ATM_TXT, TOPUP, SALARY, BILL, ALLOWANCE, PENSION, INVOICE, SUPPLIER,
 LIXI, HOUSE, MOTORBIKE, TET_BONUS, REFUND, INVEST, FEE, ORDER, GENERIC) = range(20)

CURRENCIES = ("VND", "USD")
