"""MCC-MNC -> country and operator, for naming a SIM's home network and the networks in range.

Input: an IMSI (AT+CIMI) or a 5-6 digit PLMN code (AT+COPS). Output: (country, operator).
Covers Kazakhstan and its neighbours (Russia, Kyrgyzstan, Uzbekistan, Tajikistan,
Turkmenistan, China, Mongolia); anything else comes back with the country only
where the MCC is known, else "unknown".

Sources: ITU-T E.212 "Mobile Network Codes" list (ITU Operational Bulletin, annex to
No. 1111 and later amendments) and the Wikipedia pages "Mobile Network Codes in ITU
region 4xx (Asia)" and "... region 2xx (Europe)" as of 2024, cross-checked where
they differ by the operators' own names. Brands change (e.g. Tele2 Russia is "t2"
since 2024, Tele2 Kazakhstan trades with Altel under "Tele2/Altel"); the MNC stays.
"""

COUNTRIES = {
    "001": "test network",
    "250": "Russia",
    "401": "Kazakhstan",
    "428": "Mongolia",
    "434": "Uzbekistan",
    "436": "Tajikistan",
    "437": "Kyrgyzstan",
    "438": "Turkmenistan",
    "460": "China",
    "461": "China",
}

OPERATORS = {
    "00101": "Test SIM",
    # Kazakhstan (401)
    "40101": "Beeline (KaR-Tel)",
    "40102": "Kcell",
    "40107": "Altel",
    "40108": "Kazakhtelecom",
    "40177": "Tele2 (Mobile Telecom-Service)",
    # Russia (250)
    "25001": "MTS",
    "25002": "MegaFon",
    "25011": "Yota",
    "25020": "Tele2 (t2)",
    "25035": "Motiv",
    "25099": "Beeline (VimpelCom)",
    # Kyrgyzstan (437)
    "43701": "Beeline (Sky Mobile)",
    "43705": "MegaCom (Alfa Telecom)",
    "43709": "O! (Nur Telecom)",
    # Uzbekistan (434)
    "43404": "Beeline (Unitel)",
    "43405": "Ucell (Coscom)",
    "43406": "Perfectum Mobile",
    "43407": "Mobiuz (UMS)",
    "43408": "UzMobile (Uzbektelecom)",
    # Tajikistan (436)
    "43601": "Tcell (Somoncom)",
    "43602": "Tcell (Indigo)",
    "43603": "MegaFon Tajikistan",
    "43604": "Babilon-M",
    "43605": "ZET-Mobile (Tacom)",
    # Turkmenistan (438)
    "43801": "MTS Turkmenistan (BCTI)",
    "43802": "TM-Cell (Altyn Asyr)",
    # China (460)
    "46000": "China Mobile",
    "46001": "China Unicom",
    "46002": "China Mobile",
    "46003": "China Telecom",
    "46004": "China Mobile",
    "46005": "China Telecom",
    "46006": "China Unicom",
    "46007": "China Mobile",
    "46008": "China Mobile",
    "46009": "China Unicom",
    "46011": "China Telecom",
    "46015": "China Broadnet",
    # Mongolia (428)
    "42833": "ONDO",
    "42888": "Unitel",
    "42891": "Skytel",
    "42898": "G-Mobile",
    "42899": "Mobicom",
}


def lookup(plmn):
    """'40102' -> {'mcc': '401', 'mnc': '02', 'country': 'Kazakhstan', 'operator': 'Kcell'}."""
    plmn = "".join(ch for ch in str(plmn) if ch.isdigit())
    mcc, mnc = plmn[:3], plmn[3:]
    return {
        "mcc": mcc,
        "mnc": mnc,
        "plmn": plmn,
        "country": COUNTRIES.get(mcc, "unknown"),
        "operator": OPERATORS.get(plmn, "unknown"),
    }


def from_imsi(imsi):
    """The home network of an IMSI. The MNC is 2 or 3 digits and the IMSI does not say
    which (the SIM's EF_AD does); try 3 digits, then 2, against the table, and fall back to 2
    (all the countries above use 2)."""
    digits = "".join(ch for ch in str(imsi) if ch.isdigit())
    if len(digits) < 6:
        return None
    for n in (6, 5):
        if digits[:n] in OPERATORS:
            return lookup(digits[:n])
    return lookup(digits[:5])
