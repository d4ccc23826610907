"""The laboratory that issues the certificates: its header, and the DCC's calibration
laboratory and location.

A centre writes it once in a small TOML file (``benchctl report --lab FILE``, or the
``BENCHCTL_LABORATORY`` environment variable naming the file), so the header is the centre's
own and not a constant in code:

```toml
name = "Trung tâm Kỹ thuật Tiêu chuẩn Đo lường Chất lượng tỉnh X"
name_en = "Technical Centre for Standards, Metrology and Quality of X province"
address = "12 Đường Y, Phường Z"
city = "Thành phố X"
country = "VN"                 # ISO 3166-1 alpha-2
phone = "+84 ..."
email = "tdc@example.vn"
code = "VILAS 123"             # accreditation or designation number (optional)
```
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ENV_VAR = "BENCHCTL_LABORATORY"
KEYS = ("name", "name_en", "address", "city", "country", "phone", "email", "code")


@dataclass(frozen=True)
class Laboratory:
    name: str = "Trung tâm Kỹ thuật Tiêu chuẩn Đo lường Chất lượng"
    name_en: str = "Technical Centre for Standards, Metrology and Quality"
    address: str = ""
    city: str = ""
    country: str = "VN"
    phone: str = ""
    email: str = ""
    code: str = ""

    def display_name(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name


def load_laboratory(path: str | Path | None = None) -> Laboratory:
    """The laboratory from ``path``, else from $BENCHCTL_LABORATORY, else the default header."""
    chosen = path if path is not None else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return Laboratory()
    p = Path(chosen)
    f = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f, "", "a laboratory file (TOML); it does not exist") from None
    except OSError as exc:
        raise ConfigError(f, "", f"a readable laboratory file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f, "", "a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f, "", f"valid TOML ({exc})") from None
    return parse_laboratory(data, f)


def parse_laboratory(data: dict[str, Any], file: str) -> Laboratory:
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key not in KEYS:
            raise ConfigError(file, key, f"one of the keys {', '.join(KEYS)}")
        if not isinstance(value, str):
            raise ConfigError(file, key, "a text value in quotes", got=value)
        fields[key] = value.strip()
    if not fields.get("name"):
        raise ConfigError(file, "name", "the laboratory's name (it heads every certificate)")
    country = fields.get("country", "VN")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ConfigError(file, "country", "an ISO 3166-1 alpha-2 code such as \"VN\"",
                          got=country)
    fields["country"] = country
    return Laboratory(**fields)
