"""Licences of library sounds: display names, links, and what sharing a derived stem requires.

The codes are the SPDX-style ones of ../shared/sfx/manifest.csv. A stem made from a reference
clip is an adaptation of it, so share-alike (CC BY-SA) and GPL clips pass their terms on to it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LicenceInfo", "LICENCES", "licence_info", "MODIFICATION_NOTE", "SOURCE_PACKAGE_VERSIONS"]

MODIFICATION_NOTE = ("modified from the original: down-mixed to mono, resampled to 16 kHz, 16-bit, "
                     "leading/trailing silence trimmed, long files cut into 10 s windows")


@dataclass(frozen=True)
class LicenceInfo:
    """One licence: `name` for people, `url`, and the obligations when sharing a derived stem."""

    code: str
    name: str
    url: str
    attribution_required: bool
    share_alike: bool
    copyleft_note: str = ""

    def obligations(self) -> str:
        """One sentence: what sharing a stem made from a clip under this licence requires."""
        if self.share_alike:
            return (f"Share-alike: stems made from this clip are adaptations and must also be released "
                    f"under {self.name} (or a compatible later version), with this credit.")
        if self.copyleft_note:
            return self.copyleft_note
        if self.attribution_required:
            return "Credit the author(s), name the licence and say that the sound was modified."
        return "No conditions (credit is appreciated)."


LICENCES: dict[str, LicenceInfo] = {
    "CC-BY-SA-3.0": LicenceInfo("CC-BY-SA-3.0", "CC BY-SA 3.0",
                                "https://creativecommons.org/licenses/by-sa/3.0/", True, True),
    "CC-BY-3.0": LicenceInfo("CC-BY-3.0", "CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/",
                             True, False),
    "CC0-1.0": LicenceInfo("CC0-1.0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/",
                           False, False),
    "public-domain": LicenceInfo("public-domain", "public domain", "", False, False),
    "GPL-2+": LicenceInfo(
        "GPL-2+", "GNU GPL v2 or later", "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html", True, False,
        "GPL: stems made from this clip must be distributed under the GNU GPL (version 2 or later) with "
        "its licence text and copyright notice; the original recording (the 'source') is in the named "
        "Debian package."),
    "GPL-2": LicenceInfo(
        "GPL-2", "GNU GPL v2", "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html", True, False,
        "GPL: stems made from this clip must be distributed under the GNU GPL version 2 with its licence "
        "text and copyright notice; the original recording (the 'source') is in the named Debian package."),
    "CC-BY-4.0": LicenceInfo("CC-BY-4.0", "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/", True, False),
    "CC-BY-SA-4.0": LicenceInfo("CC-BY-SA-4.0", "CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/",
                                True, True),
    "GPL-3+": LicenceInfo(
        "GPL-3+", "GNU GPL v3 or later", "https://www.gnu.org/licenses/gpl-3.0.html", True, False,
        "GPL: stems made from this clip must be distributed under the GNU GPL (version 3 or later) with its "
        "licence text and copyright notice; the original recording is in the named Debian package."),
    "GPL-3": LicenceInfo(
        "GPL-3", "GNU GPL v3", "https://www.gnu.org/licenses/gpl-3.0.html", True, False,
        "GPL: stems made from this clip must be distributed under the GNU GPL version 3 with its licence text "
        "and copyright notice; the original recording is in the named Debian package."),
    "LGPL-2+": LicenceInfo("LGPL-2+", "GNU LGPL v2 or later", "https://www.gnu.org/licenses/old-licenses/lgpl-2.0.html",
                           True, False, "LGPL: share changes to this clip under the LGPL with its licence text "
                           "and copyright notice."),
    "LGPL-2.1+": LicenceInfo("LGPL-2.1+", "GNU LGPL v2.1 or later",
                             "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html", True, False,
                             "LGPL: share changes to this clip under the LGPL with its licence text and copyright "
                             "notice."),
    "LGPL-3+": LicenceInfo("LGPL-3+", "GNU LGPL v3 or later", "https://www.gnu.org/licenses/lgpl-3.0.html", True,
                           False, "LGPL: share changes to this clip under the LGPL with its licence text and "
                           "copyright notice."),
    "MIT": LicenceInfo("MIT", "MIT (Expat)", "https://opensource.org/license/mit/", True, False,
                       "Keep the copyright notice and the MIT permission notice with the stem."),
    "BSD-2-clause": LicenceInfo("BSD-2-clause", "BSD 2-clause", "https://opensource.org/license/bsd-2-clause/",
                                True, False, "Keep the copyright notice and the BSD licence text with the stem."),
    "BSD-3-clause": LicenceInfo("BSD-3-clause", "BSD 3-clause", "https://opensource.org/license/bsd-3-clause/",
                                True, False, "Keep the copyright notice and the BSD licence text with the stem."),
    "zlib": LicenceInfo("zlib", "zlib", "https://opensource.org/license/zlib/", False, False,
                        "Do not misrepresent the origin; mark the stem as altered (credit is appreciated)."),
}


def licence_info(code: str) -> LicenceInfo | None:
    """The LicenceInfo for a manifest code, or None for an unknown/unrecorded licence."""
    return LICENCES.get((code or "").strip())

# Debian 12 package versions the shared clips were taken from (../shared/sfx/README.md): the GPL's
# "source" of a clip is its original file in this package.
SOURCE_PACKAGE_VERSIONS: dict[str, str] = {
    "0ad-data": "0.0.26-1",
    "ufoai-sound": "2.5-2",
    "redeclipse-data": "1.6.0-1",
    "openttd-opensfx": "1.0.3-2",
    "minetest-data": "5.6.1+dfsg+~1.9.0mt8+dfsg-2",
    "scratch": "1.4.0.6~dfsg1-6.1",
    "torcs-data": "1.3.7+dfsg-5",
    "flightgear-data-base": "1:2020.3.16+dfsg-1",
}
