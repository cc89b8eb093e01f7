"""Build the sound library from Debian packages, reproducibly: the full library and the bundled starter set.

    # the full library (a few thousand clips, native rate and channels), outside git:
    PYTHONPATH=. python scripts/build_sound_library.py --full --out ~/.cache/foley_studio/sound_library
    # the bundled starter set (every category, under --max-mb), chosen from the full library:
    PYTHONPATH=. python scripts/build_sound_library.py --starter --out assets/library

INTEGRITY RULE. ../shared/sfx (the project's captioned training/evaluation set) was built from the
Debian packages 0ad-data, ufoai-sound, redeclipse-data, openttd-opensfx, minetest-data, scratch,
torcs-data and flightgear-data-base, and 157 of their clips are a hidden evaluation set that must
never be seen or recovered. So this script NEVER downloads or reads those eight packages (nor
packages known to ship copies of their sounds: nexuiz-data, whose sounds ufoai-sound reuses, and
the rest of the flightgear/minetest/openttd families): clips from them enter the library only
through ../shared/sfx's own train split (manifest.csv split=train, byte copies of its 16 kHz mono
FLACs, as the older starter library did). Every NEW clip comes from one of PACKAGES below.

Steps, each resumable (work files live in --cache, default /work/cache or ~/.cache/foley_studio/debs):
1. `apt-get download PKG=VERSION` at the pinned versions of PACKAGES (recorded per clip in
   index.csv's source_version); `dpkg-deb -x` into the cache.
2. Find audio (ogg, wav, flac, mp3), also inside zip-format archives (.zip, .pk3, .wz).
   Paths that are music, speech or voice-overs are left out (not Foley).
3. Licence per file from the package's machine-readable /usr/share/doc/PKG/copyright (DEP-5: the
   last `Files:` paragraph whose pattern matches the end of the installed path wins); packages
   whose copyright file is free-form carry a reviewed package-wide licence in PACKAGES. Only
   licences that allow redistribution and combination with AGPL-3.0 are kept (ALLOWED); a file
   under any other or an unclear licence (GPL-2-only, unversioned "GPL", GFDL, custom) is skipped
   and counted in the build report.
4. Decode, trim leading/trailing silence (below -60 dB of the peak), cap at 30 s (longer files
   become up to 4 consecutive 30 s windows), keep the native rate and channels.
5. Caption from the file and folder names ("footstep on gravel, walking" style), categorise by
   keyword rules into the studio's 19 categories and the Universal Category System (UCS
   Category/SubCategory; CatID only where it is certain, else empty); files no rule recognises
   are skipped (counted).
6. Duplicates removed by content: a hash of the decoded, down-mixed, peak-normalised audio's
   10 ms loudness envelope (so the same sound at another rate, format or gain counts once);
   the first in package order wins.
7. Store: an OGG/Vorbis source keeps its own bytes when it needed no trim or cut (lossless with
   respect to the source); otherwise the clip is written as FLAC (16-bit, or 24-bit for 24-bit
   sources), never re-encoded lossily.
Writes index.csv (INDEX_COLUMNS + INDEX_EXTRA_COLUMNS of foley_core.library.catalog),
ATTRIBUTION.md (licence and credit per clip) and licenses/ (each package's Debian copyright file
plus the common licence texts the clips need).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foley_core.atomic import write_bytes_atomic, write_text_atomic  # noqa: E402
from foley_core.library.catalog import CATEGORIES, INDEX_COLUMNS, INDEX_EXTRA_COLUMNS  # noqa: E402
from foley_core.library.licences import LICENCES, MODIFICATION_NOTE, SOURCE_PACKAGE_VERSIONS  # noqa: E402

# The eight packages ../shared/sfx was built from, and packages that ship copies of their sounds:
# never read (see the integrity rule above).
FORBIDDEN_PACKAGES = frozenset({
    "0ad-data", "0ad-data-common", "ufoai-sound", "ufoai-data", "ufoai-maps", "redeclipse-data", "openttd-opensfx",
    "minetest-data", "scratch", "torcs-data", "flightgear-data-base", "flightgear-data-ai", "flightgear-data-all",
    "nexuiz-data", "openttd-data",
})


class Package(NamedTuple):
    name: str
    version: str
    upstream: str                 # who made the sounds, for the credit line
    licence: str = ""             # package-wide licence for a free-form (non-DEP-5) copyright file
    note: str = ""


# Debian 12 (bookworm) versions, pinned: a rebuild downloads exactly these.
PACKAGES: tuple[Package, ...] = (
    Package("megaglest-data", "3.13.0-3", "The Glest Team and the MegaGlest Team"),
    Package("warzone2100-data", "4.3.3-3", "Warzone 2100 Project"),
    Package("openarena-data", "0.8.5split-14", "OpenArena team"),
    Package("wesnoth-1.16-data", "1:1.16.9-1", "The Battle for Wesnoth project (David White et al.)", "GPL-2+",
            "free-form copyright file: the whole package is GPL-2 or any later version"),
    Package("widelands-data", "2:1.1-3", "Widelands Development Team"),
    Package("freedroidrpg-data", "1.0-1", "FreedroidRPG team"),
    Package("lincity-ng-data", "2.9~git20150314-5", "LinCity-NG team"),
    Package("warmux-data", "1:11.04.1+repack2-4", "WarMUX team (see data/authors.xml)", "GPL-2+",
            "free-form copyright file: GPL-2 or any later version"),
    Package("supertux-data", "0.6.3-2", "SuperTux team"),
    Package("supertuxkart-data", "1.4+dfsg-2", "SuperTuxKart team"),
    Package("flare-game", "1.14-1", "Flare project (Clint Bellanger et al.)"),
    Package("trigger-rally-data", "0.6.6.1-3", "Trigger Rally team"),
    Package("boswars-data", "2.7+svn160110-5", "Bos Wars team"),
    Package("sound-theme-freedesktop", "0.8-2", "freedesktop.org sound theme contributors"),
    Package("tuxpaint-data", "1:0.9.28-sdl2-1", "Tux Paint team (New Breed Software)"),
    Package("hedgewars-data", "1.0.2-6", "Hedgewars project"),
    Package("freeciv-data", "3.0.6-1+deb12u1", "Freeciv project"),
    Package("frozen-bubble-data", "2.212-11", "Frozen Bubble team"),
    Package("pingus-data", "0.7.6-5.1", "Pingus team"),
    Package("extremetuxracer-data", "0.8.2-1", "Extreme Tux Racer team"),
    Package("bzflag-data", "2.4.26-1", "BZFlag team"),
    Package("pinball-data", "0.3.20201218-4", "Emilia pinball team"),
    Package("tecnoballz-data", "0.93.1-10", "TLK Games"),
    Package("lmms-common", "1.2.2+dfsg1-6", "LMMS developers"),
    Package("kapman", "4:22.12.3-1", "KDE Games (Kapman)"),
    Package("kbounce", "4:22.12.3-1", "KDE Games (KBounce)"),
    Package("kgoldrunner", "4:22.12.3-1", "KDE Games (KGoldrunner)"),
    Package("bomber", "4:22.12.3-1", "KDE Games (Bomber)"),
    Package("chromium-bsu-data", "0.9.16.1-3", "Chromium B.S.U. team"),
    Package("open-invaders-data", "0.3-8", "Open Invaders team"),
)
# Looked at and left out (the build report and docs/LIBRARY.md repeat this):
SKIPPED_PACKAGES = {
    "ktuberling-data": "spoken words in many languages, not sound effects",
    "mirrormagic-data": "copyright file says only 'GPL' without a version: unclear",
    "gcompris-qt-data": "audio sits inside compiled Qt resource (.rcc) files",
    "teeworlds-data": "WavPack (.wv) audio, not decodable with libsndfile",
    "openclonk-data": "audio inside c4group (.ocg/.ocd) archives, no reader here",
    "neverball-data": "no audio in the data package",
    "nexuiz-data": "ufoai-sound (an evaluation-set source) reuses Nexuiz sounds: integrity rule",
    "beneath-a-steel-sky": "freeware licence, not combinable with AGPL-3.0",
    "lure-of-the-temptress": "freeware licence, not combinable with AGPL-3.0",
}

# Licence codes (as in foley_core.library.licences.LICENCES) that may be redistributed and combined
# with AGPL-3.0, keyed by the normalised DEP-5 short name.
ALLOWED = {
    "cc0": "CC0-1.0", "cc0-1.0": "CC0-1.0", "public-domain": "public-domain", "publicdomain": "public-domain",
    "cc-by-3.0": "CC-BY-3.0", "cc-by-3": "CC-BY-3.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-4": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0", "cc-by-sa-3": "CC-BY-SA-3.0", "cc-by-sa-3.0+": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-sa-4": "CC-BY-SA-4.0",
    "gpl-2+": "GPL-2+", "gpl-2.0+": "GPL-2+", "gpl-3+": "GPL-3+", "gpl-3.0+": "GPL-3+", "gpl-3": "GPL-3",
    "gpl-3.0": "GPL-3",
    "lgpl-2+": "LGPL-2+", "lgpl-2.1+": "LGPL-2.1+", "lgpl-3+": "LGPL-3+",
    "mit": "MIT", "expat": "MIT", "bsd-3-clause": "BSD-3-clause", "bsd-2-clause": "BSD-2-clause", "zlib": "zlib",
}
COMMON_LICENCE_TEXTS = {"GPL-2+": "GPL-2", "GPL-3+": "GPL-3", "GPL-3": "GPL-3", "LGPL-2+": "LGPL-2",
                        "LGPL-2.1+": "LGPL-2.1", "LGPL-3+": "LGPL-3"}

AUDIO_SUFFIXES = (".ogg", ".oga", ".wav", ".flac", ".mp3")
ARCHIVE_SUFFIXES = (".zip", ".pk3", ".wz")
NOT_FOLEY = re.compile(r"(^|[/_\-. ])(music|musics|songs?|voices?|voice_?overs?|speech|taunts?|announcer|narrat\w*|"
                       r"lang|locale|tutorial|jingles?|soundtrack|credits|codriver|memressp|cmndrvoc|missmesg|vtoltalk|"
                       r"proxmessages|coltive|extra/pcv|ack\d*|bot_sounds|drums|instruments|basses|bassloops|beats|"
                       r"shapes|waveforms|stringsnpads|synths?|audio-channel\S*|stdmusic|titles|intro|mainzik|"
                       r"introzik|sequenceaudio|cutscenes?|npcs)([/_\-. \d]|$)")
SILENCE_DB = -60.0
MAX_SECONDS = 30.0
MAX_WINDOWS = 4
MIN_SECONDS = 0.05
OGG_KEEP_TRIM_S = 0.1        # an OGG source that loses less than this keeps its own bytes

SHARED_PACKAGES = tuple(SOURCE_PACKAGE_VERSIONS)


# ------------------------------------------------------------------ categories: ours and UCS

# UCS v8.2 (universalcategorysystem.com): the CatIDs this build assigns, with their Category and
# SubCategory names.
UCS = {
    "FEETHmn": ("FOOTSTEPS", "HUMAN"), "FEETHors": ("FOOTSTEPS", "HORSE"), "FEETAnml": ("FOOTSTEPS", "ANIMAL"),
    "DOORMisc": ("DOORS", "MISC"), "DOORWood": ("DOORS", "WOOD"), "DOORMetl": ("DOORS", "METAL"),
    "DOORSlid": ("DOORS", "SLIDING"), "DOORTech": ("DOORS", "HITECH"), "DOORGate": ("DOORS", "GATE"),
    "DOORKnck": ("DOORS", "KNOCK"), "DOORHdwr": ("DOORS", "HARDWARE"),
    "GLASBrk": ("GLASS", "BREAK"), "GLASImpt": ("GLASS", "IMPACT"), "GLASMisc": ("GLASS", "MISC"),
    "RAIN": ("RAIN", "GENERAL"), "THUN": ("THUNDER", "THUNDER"), "STORM": ("STORM", "STORM"),
    "WATRSplsh": ("WATER", "SPLASH"), "WATRDrip": ("WATER", "DRIP"), "WATRBubl": ("WATER", "BUBBLES"),
    "WATRFlow": ("WATER", "FLOW"), "WATRWave": ("WATER", "WAVE"), "WATRPour": ("WATER", "POUR"),
    "WATRMisc": ("WATER", "MISC"), "WATRFoun": ("WATER", "FOUNTAIN"), "WATRPlmb": ("WATER", "PLUMBING"),
    "WATRFall": ("WATER", "WATERFALL"), "LIQBubl": ("LIQUID & MUD", "BUBBLES"), "LIQMisc": ("LIQUID & MUD", "MISC"),
    "WIND": ("WIND", "GENERAL"), "WINDGust": ("WIND", "GUST"), "WHSH": ("WHOOSHES", "WHOOSH"),
    "SWSH": ("SWOOSHES", "SWISH"),
    "FIREBurn": ("FIRE", "BURNING"), "FIRECrkl": ("FIRE", "CRACKLE"), "FIREIgn": ("FIRE", "IGNITE"),
    "FIRETrch": ("FIRE", "TORCH"), "FIREWhsh": ("FIRE", "WHOOSH"), "FIREMisc": ("FIRE", "MISC"),
    "EXPLReal": ("EXPLOSIONS", "REAL"), "EXPLMisc": ("EXPLOSIONS", "MISC"), "EXPLDsgn": ("EXPLOSIONS", "DESIGNED"),
    "MOTRComb": ("MOTORS", "COMBUSTION"), "MOTRElec": ("MOTORS", "ELECTRIC"), "MOTRTurb": ("MOTORS", "TURBINE"),
    "MOTRSrvo": ("MOTORS", "SERVO"),
    "VEHCar": ("VEHICLES", "CAR"), "VEHTruck": ("VEHICLES", "TRUCK VAN & SUV"), "VEHSkid": ("VEHICLES", "SKID"),
    "VEHTire": ("VEHICLES", "TIRE"), "VEHBrake": ("VEHICLES", "BRAKE"), "VEHHorn": ("VEHICLES", "HORN"),
    "VEHMil": ("VEHICLES", "MILITARY"), "VEHMoto": ("VEHICLES", "MOTORCYCLE"), "VEHBike": ("VEHICLES", "BICYCLE"),
    "VEHWagn": ("VEHICLES", "WAGON"), "VEHMisc": ("VEHICLES", "MISC"), "VEHRace": ("VEHICLES", "RACING"),
    "VEHCnst": ("VEHICLES", "CONSTRUCTION"), "TRNMisc": ("TRAINS", "MISC"), "TRNSteam": ("TRAINS", "STEAM"),
    "AEROHeli": ("AIRCRAFT", "HELICOPTER"), "AEROJet": ("AIRCRAFT", "JET"), "AEROProp": ("AIRCRAFT", "PROP"),
    "AEROMisc": ("AIRCRAFT", "MISC"), "AERORckt": ("AIRCRAFT", "ROCKET"), "BOATMisc": ("BOATS", "MISC"),
    "SCIVeh": ("SCIFI", "VEHICLE"), "SCIShip": ("SCIFI", "SPACESHIP"),
    "BIRDMisc": ("BIRDS", "MISC"), "BIRDCrow": ("BIRDS", "CROW"), "BIRDFowl": ("BIRDS", "FOWL"),
    "BIRDSea": ("BIRDS", "SEA"), "BIRDSong": ("BIRDS", "SONGBIRD"), "BIRDPrey": ("BIRDS", "BIRD OF PREY"),
    "WINGBird": ("WINGS", "BIRD"),
    "ANMLDog": ("ANIMALS", "DOG"), "ANMLCat": ("ANIMALS", "CAT DOMESTIC"), "ANMLWcat": ("ANIMALS", "CAT WILD"),
    "ANMLHors": ("ANIMALS", "HORSE"), "ANMLFarm": ("ANIMALS", "FARM"), "ANMLInsc": ("ANIMALS", "INSECT"),
    "ANMLAmph": ("ANIMALS", "AMPHIBIAN"), "ANMLAqua": ("ANIMALS", "AQUATIC"), "ANMLRept": ("ANIMALS", "REPTILE"),
    "ANMLRdnt": ("ANIMALS", "RODENT"), "ANMLPrim": ("ANIMALS", "PRIMATE"), "ANMLBat": ("ANIMALS", "BAT"),
    "ANMLWild": ("ANIMALS", "WILD"), "ANMLMisc": ("ANIMALS", "MISC"), "CREAMnstr": ("CREATURES", "MONSTER"),
    "CREADrgn": ("CREATURES", "DRAGON"), "CREAMisc": ("CREATURES", "MISC"),
    "WEAPSwrd": ("WEAPONS", "SWORD"), "WEAPKnif": ("WEAPONS", "KNIFE"), "WEAPBlnt": ("WEAPONS", "BLUNT"),
    "WEAPPole": ("WEAPONS", "POLEARM"), "WEAPBow": ("WEAPONS", "BOW"), "WEAPArro": ("WEAPONS", "ARROW"),
    "WEAPSiege": ("WEAPONS", "SIEGE"), "WEAPArmr": ("WEAPONS", "ARMOR"), "WEAPWhip": ("WEAPONS", "WHIP"),
    "WEAPMisc": ("WEAPONS", "MISC"), "GUNPis": ("GUNS", "PISTOL"), "GUNRif": ("GUNS", "RIFLE"),
    "GUNShotg": ("GUNS", "SHOTGUN"), "GUNAuto": ("GUNS", "AUTOMATIC"), "GUNCano": ("GUNS", "CANNON"),
    "GUNArtl": ("GUNS", "ARTILLERY"), "GUNMech": ("GUNS", "MECHANISM"), "GUNTech": ("GUNS", "HITECH"),
    "GUNMisc": ("GUNS", "MISC"), "BLLTRico": ("BULLETS", "RICOCHET"), "BLLTImpt": ("BULLETS", "IMPACT"),
    "LASRGun": ("LASERS", "GUN"), "SCIWeap": ("SCIFI", "WEAPON"),
    "HMNBrth": ("HUMAN", "BREATH"), "HMNCough": ("HUMAN", "COUGH"), "HMNHart": ("HUMAN", "HEARTBEAT"),
    "HMNKiss": ("HUMAN", "KISS"), "HMNSneez": ("HUMAN", "SNEEZE"), "HMNSnor": ("HUMAN", "SNORE"),
    "HMNBurp": ("HUMAN", "BURP"), "HMNMisc": ("HUMAN", "MISC"), "VOXEfrt": ("VOICES", "EFFORTS"),
    "VOXScrm": ("VOICES", "SCREAM"), "VOXLaff": ("VOICES", "LAUGH"), "VOXReac": ("VOICES", "REACTION"),
    "CRWDApls": ("CROWDS", "APPLAUSE"), "CRWDCheer": ("CROWDS", "CHEERING"), "CRWDMisc": ("CROWDS", "MISC"),
    "CRWDBatl": ("CROWDS", "BATTLE"), "FGHTImpt": ("FIGHT", "IMPACT"), "FGHTBf": ("FIGHT", "BODYFALL"),
    "FOLYClth": ("FOLEY", "CLOTH"), "FOLYHand": ("FOLEY", "HANDS"), "FOLYProp": ("FOLEY", "PROP"),
    "CLOTHMvmt": ("CLOTH", "MOVEMENT"), "CLOTHFlp": ("CLOTH", "FLAP"), "FOODEat": ("FOOD & DRINK", "EATING"),
    "FOODDrnk": ("FOOD & DRINK", "DRINKING"), "FOODCook": ("FOOD & DRINK", "COOKING"),
    "GORESplt": ("GORE", "SPLAT"), "GORESqsh": ("GORE", "SQUISH"),
    "TOOLHand": ("TOOLS", "HAND"), "TOOLPowr": ("TOOLS", "POWER"), "TOOLMisc": ("TOOLS", "MISC"),
    "MACHMisc": ("MACHINES", "MISC"), "MACHInd": ("MACHINES", "INDUSTRIAL"), "MACHElev": ("MACHINES", "ELEVATOR"),
    "MACHPump": ("MACHINES", "PUMP"), "MACHCnst": ("MACHINES", "CONSTRUCTION"), "MACHTech": ("MACHINES", "HITECH"),
    "MACHMech": ("MACHINES", "MECHANISM"), "MECHGear": ("MECHANICAL", "GEARS"), "MECHLvr": ("MECHANICAL", "LEVER"),
    "MECHSwtch": ("MECHANICAL", "SWITCH"), "MECHHydr": ("MECHANICAL", "HYDRAULIC & PNEUMATIC"),
    "MECHLock": ("MECHANICAL", "LOCK"), "MECHClik": ("MECHANICAL", "CLICK"), "MECHMisc": ("MECHANICAL", "MISC"),
    "ROBTMvmt": ("ROBOTS", "MOVEMENT"), "ROBTMisc": ("ROBOTS", "MISC"), "ELECSprk": ("ELECTRICITY", "SPARKS"),
    "ELECZap": ("ELECTRICITY", "ZAP"), "ELECBuzz": ("ELECTRICITY", "BUZZ & HUM"), "ELECArc": ("ELECTRICITY", "ARC"),
    "ALRMSirn": ("ALARMS", "SIREN"), "ALRMElec": ("ALARMS", "ELECTRONIC"), "ALRMBell": ("ALARMS", "BELL"),
    "ALRMBuzr": ("ALARMS", "BUZZER"), "CLOCKTick": ("CLOCKS", "TICK"), "SCIMach": ("SCIFI", "MACHINE"),
    "SCIEnrg": ("SCIFI", "ENERGY"), "SCIMisc": ("SCIFI", "MISC"), "SCIDoor": ("SCIFI", "DOOR"),
    "UIClick": ("USER INTERFACE", "CLICK"), "UIBeep": ("USER INTERFACE", "BEEP"), "UIAlert": ("USER INTERFACE", "ALERT"),
    "UIMisc": ("USER INTERFACE", "MISC"), "UIData": ("USER INTERFACE", "DATA"), "UIMvmt": ("USER INTERFACE", "MOTION"),
    "UIGlitch": ("USER INTERFACE", "GLITCH"), "OBJCoin": ("OBJECTS", "COIN"), "GAMEArcd": ("GAMES", "ARCADE"),
    "GAMEVideo": ("GAMES", "VIDEO"), "BEEP": ("BEEPS", "GENERAL"), "BELLMisc": ("BELLS", "MISC"),
    "COMCam": ("COMMUNICATIONS", "CAMERA"), "COMTelph": ("COMMUNICATIONS", "TELEPHONE"),
    "COMStatic": ("COMMUNICATIONS", "STATIC"), "COMRadio": ("COMMUNICATIONS", "RADIO"), "CMPTKey": ("COMPUTERS", "KEYBOARD & MOUSE"),
    "MAGSpel": ("MAGIC", "SPELL"), "MAGPoof": ("MAGIC", "POOF"), "MAGShim": ("MAGIC", "SHIMMER"),
    "AMBMisc": ("AMBIENCE", "MISC"), "AMBForst": ("AMBIENCE", "FOREST"), "AMBUrbn": ("AMBIENCE", "URBAN"),
    "AMBRurl": ("AMBIENCE", "RURAL"), "AMBInd": ("AMBIENCE", "INDUSTRIAL"), "AMBMrkt": ("AMBIENCE", "MARKET"),
    "AMBSea": ("AMBIENCE", "SEASIDE"), "AMBDsrt": ("AMBIENCE", "DESERT"), "AMBSwmp": ("AMBIENCE", "SWAMP"),
    "AMBUndr": ("AMBIENCE", "UNDERGROUND"), "AMBFarm": ("AMBIENCE", "FARM"), "AMBRoom": ("AMBIENCE", "ROOM TONE"),
    "AMBTraf": ("AMBIENCE", "TRAFFIC"), "AMBTrop": ("AMBIENCE", "TROPICAL"), "AMBWar": ("AMBIENCE", "WARFARE"),
    "AMBCnst": ("AMBIENCE", "CONSTRUCTION"), "AMBBird": ("AMBIENCE", "BIRDSONG"), "AMBDsgn": ("AMBIENCE", "DESIGNED"),
    "AMBRest": ("AMBIENCE", "RESTAURANT & BAR"), "AMBSubn": ("AMBIENCE", "SUBURBAN"), "AMBAir": ("AMBIENCE", "AIR"),
    "AMBTech": ("AMBIENCE", "HITECH"), "AMBRlgn": ("AMBIENCE", "RELIGIOUS"),
    "WOODImpt": ("WOOD", "IMPACT"), "WOODBrk": ("WOOD", "BREAK"), "WOODCrsh": ("WOOD", "CRASH & DEBRIS"),
    "WOODMvmt": ("WOOD", "MOVEMENT"), "WOODFric": ("WOOD", "FRICTION"), "METLImpt": ("METAL", "IMPACT"),
    "METLBrk": ("METAL", "BREAK"), "METLCrsh": ("METAL", "CRASH & DEBRIS"), "METLFric": ("METAL", "FRICTION"),
    "METLMvmt": ("METAL", "MOVEMENT"), "METLTonl": ("METAL", "TONAL"), "CHAINMvmt": ("CHAINS", "MOVEMENT"),
    "ROCKImpt": ("ROCKS", "IMPACT"), "ROCKBrk": ("ROCKS", "BREAK"), "ROCKCrsh": ("ROCKS", "CRASH & DEBRIS"),
    "ROCKFric": ("ROCKS", "FRICTION"), "ROCKMvmt": ("ROCKS", "MOVEMENT"), "DIRTImpt": ("DIRT & SAND", "IMPACT"),
    "DIRTMvmt": ("DIRT & SAND", "MOVEMENT"), "DIRTCrsh": ("DIRT & SAND", "CRASH & DEBRIS"),
    "PAPRHndl": ("PAPER", "HANDLE"), "PAPRRip": ("PAPER", "RIP"), "PAPRFltr": ("PAPER", "FLUTTER"),
    "PLASImpt": ("PLASTIC", "IMPACT"), "RUBRImpt": ("RUBBER", "IMPACT"), "ICEImpt": ("ICE", "IMPACT"),
    "ICEFric": ("ICE", "FRICTION"), "ICEBrk": ("ICE", "BREAK"), "SNOWImpt": ("SNOW", "IMPACT"),
    "SNOWFric": ("SNOW", "FRICTION"), "CERMBrk": ("CERAMICS", "BREAK"), "CERMImpt": ("CERAMICS", "IMPACT"),
    "DESTRCrsh": ("DESTRUCTION", "CRASH & DEBRIS"), "DESTRClpse": ("DESTRUCTION", "COLLAPSE"),
    "TOONBoing": ("CARTOON", "BOING"), "TOONPop": ("CARTOON", "POP"), "TOONSplt": ("CARTOON", "SPLAT"),
    "TOONImpt": ("CARTOON", "IMPACT"), "TOONMisc": ("CARTOON", "MISC"), "OBJMisc": ("OBJECTS", "MISC"),
    "OBJBag": ("OBJECTS", "BAG"), "OBJKey": ("OBJECTS", "KEYS"), "OBJFurn": ("OBJECTS", "FURNITURE"),
    "OBJHsehld": ("OBJECTS", "HOUSEHOLD"), "SPRTMisc": ("SPORTS", "MISC"), "VEGEGras": ("VEGETATION", "GRASS"),
    "VEGELeaf": ("VEGETATION", "LEAVES"), "VEGETree": ("VEGETATION", "TREE"), "MOVEMisc": ("MOVEMENT", "MISC"),
    "DSGNMisc": ("DESIGNED", "MISC"), "DSGNBoom": ("DESIGNED", "BOOM"), "DSGNRmbl": ("DESIGNED", "RUMBLE"),
    "DSGNSynth": ("DESIGNED", "SYNTHETIC"), "DSGNStngr": ("DESIGNED", "STINGER"),
}

# (regex on the clip's words, our category, CatID). First match wins, so specific rules come first.
W = r"\w*"
RULES: tuple[tuple[str, str, str], ...] = (
    (rf"\bhoof{W}|\bhorse{W}\b.*\b(step{W}|walk{W}|gallop{W}|trot{W}|run{W})\b|\bgallop{W}|\btrot{W}", "footsteps", "FEETHors"),
    (rf"\b(footsteps?|footfall{W}|steps?|fs|walk{W}|running|sneak{W}|stomp{W}|boots?|shoes?)\b", "footsteps", "FEETHmn"),
    (rf"\b(knock{W})\b.*\bdoor|\bdoor{W}\b.*\bknock", "door", "DOORKnck"),
    (rf"\bgate{W}\b", "door", "DOORGate"),
    (rf"\b(door{W}|hatch{W})\b.*\b(metal|iron|steel)\b|\b(metal|iron|steel)\b.*\bdoor", "door", "DOORMetl"),
    (rf"\b(door{W}|hatch{W})\b.*\bwood{W}|\bwood{W}\b.*\bdoor", "door", "DOORWood"),
    (rf"\b(door{W}|hatch{W})\b.*\b(slid{W}|scifi|sci|airlock|hiss{W})|\bairlock", "door", "DOORSlid"),
    (rf"\b(door{W}|hatch{W}|drawbridge|portcullis|trapdoor|lock|unlock{W})\b", "door", "DOORMisc"),
    (rf"\b(glass|window|windows|bottle{W}|crystal{W}|mirror)\b.*\b(break{W}|shatter{W}|smash{W}|crash{W})|\bshatter{W}", "glass", "GLASBrk"),
    (rf"\b(glass|bottle{W}|crystal{W}|window|jar|vase)\b", "glass", "GLASImpt"),
    (rf"\bthunder{W}|\blightning", "rain", "THUN"),
    (rf"\b(rain{W}|storm{W}|drizzl{W}|downpour)\b", "rain", "RAIN"),
    (rf"\b(splash{W}|splish|splosh|plunge|dive|diving|inh2o)\b", "water", "WATRSplsh"),
    (rf"\b(drip{W}|drop(let)?s?|droplet{W}|leak{W})\b.*\bwater|\bdrip{W}|\bdroplet{W}", "water", "WATRDrip"),
    (rf"\b(bubbl{W}|gurgl{W}|blub{W}|boil{W})\b", "water", "WATRBubl"),
    (rf"\b(river{W}|stream{W}|creek|brook|flow{W}|fountain{W}|waterfall{W}|torrent)\b", "water", "WATRFlow"),
    (rf"\b(wave{W}|ocean{W}|sea|seashore|surf{W}|beach|lake|shore)\b", "water", "WATRWave"),
    (rf"\b(pour{W}|flush{W}|sink|tap|faucet|toilet)\b", "water", "WATRPour"),
    (rf"\b(water{W}|swim{W}|underwater|liquid{W}|wet|paddl{W}|plop{W}|sploosh)\b", "water", "WATRMisc"),
    (rf"\b(gust{W})\b", "wind", "WINDGust"),
    (rf"\b(wind|winds|windy|breeze{W}|blizzard|howling_?wind|gale)\b", "wind", "WIND"),
    (rf"\b(whoosh{W}|woosh{W}|swoosh{W}|swish{W}|swoop{W}|whizz?{W}|fly_?by|flyby|passby)\b", "wind", "WHSH"),
    (rf"\b(fireball{W}|flamethrower|flamer|inferno)\b", "fire", "FIREWhsh"),
    (rf"\b(ignit{W}|light(ing)?_?fire|match|fuse)\b", "fire", "FIREIgn"),
    (rf"\b(torch{W})\b", "fire", "FIRETrch"),
    (rf"\b(crackl{W}|campfire|fireplace|hearth|bonfire)\b", "fire", "FIRECrkl"),
    (rf"\b(fire|fires|flame{W}|burn{W}|blaze|lava|sizzl{W}|incinerat{W})\b", "fire", "FIREBurn"),
    (rf"\b(nuke|nuclear|atom{W}|kaboom|megaexplo{W}|big_?explo{W}|large_?explo{W})\b", "explosion", "EXPLDsgn"),
    (rf"\b(explo{W}|blast{W}|boom{W}|bomb{W}|grenade{W}|dynamite|detonat{W}|mine_?explo{W}|tnt|demolish{W})\b", "explosion", "EXPLReal"),
    (rf"\b(engine{W}|motor{W}|idle|revv?{W}|throttle|turbo{W}|exhaust|diesel|accelerat{W})\b", "engine", "MOTRComb"),
    (rf"\b(skid{W}|screech{W}|drift{W})\b", "vehicle", "VEHSkid"),
    (rf"\b(tyre{W}|tire|tires|gravel_?road|offroad)\b", "vehicle", "VEHTire"),
    (rf"\b(brake{W})\b", "vehicle", "VEHBrake"),
    (rf"\b(horn|honk{W}|klaxon)\b", "vehicle", "VEHHorn"),
    (rf"\b(tank|tanks|apc|halftrack|tracks|tracked)\b", "vehicle", "VEHMil"),
    (rf"\b(truck{W}|lorry|van|jeep|suv|buggy)\b", "vehicle", "VEHTruck"),
    (rf"\b(motorbike{W}|motorcycle{W}|scooter)\b", "vehicle", "VEHMoto"),
    (rf"\b(bicycle{W}|bike{W})\b", "vehicle", "VEHBike"),
    (rf"\b(cart|carts|wagon{W}|carriage|minecart)\b", "vehicle", "VEHWagn"),
    (rf"\b(train{W}|locomotive{W}|railway|tram{W})\b", "vehicle", "TRNMisc"),
    (rf"\b(helicopter{W}|heli|chopper|rotor{W})\b", "vehicle", "AEROHeli"),
    (rf"\b(jet|jets|plane{W}|aircraft|airplane|vtol{W}|bomber)\b", "vehicle", "AEROMisc"),
    (rf"\b(boat{W}|ship{W}|ferry|sail{W}|hovercraft)\b", "vehicle", "BOATMisc"),
    (rf"\b(car|cars|kart{W}|vehicle{W}|crash{W}|collision|race|racing)\b", "vehicle", "VEHCar"),
    (rf"\b(wing{W}|flap{W}|flutter{W})\b.*\bbird|\bbird{W}\b.*\b(wing{W}|flap{W}|flutter{W})", "bird", "WINGBird"),
    (rf"\b(crow{W}|raven{W}|caw{W})\b", "bird", "BIRDCrow"),
    (rf"\b(gull{W}|seagull{W}|seabird{W}|albatross|penguin{W})\b", "bird", "BIRDSea"),
    (rf"\b(chicken{W}|hen|hens|rooster{W}|duck{W}|goose|geese|turkey|quack{W}|cluck{W})\b", "bird", "BIRDFowl"),
    (rf"\b(owl{W}|eagle{W}|hawk{W}|falcon{W}|vulture{W})\b", "bird", "BIRDPrey"),
    (rf"\b(songbird{W}|sparrow{W}|robin|blackbird|chirp{W}|tweet{W}|twitter{W}|cuckoo|warbl{W}|birdsong)\b", "bird", "BIRDSong"),
    (rf"\b(bird{W}|parrot{W}|pigeon{W}|dove{W}|peacock)\b", "bird", "BIRDMisc"),
    (rf"\b(dog{W}|bark{W}|puppy|wolf|wolves|howl{W}|hound{W})\b", "animal", "ANMLDog"),
    (rf"\b(lion{W}|tiger{W}|panther|leopard|jaguar)\b", "animal", "ANMLWcat"),
    (rf"\b(cat|cats|kitten{W}|meow{W}|purr{W})\b", "animal", "ANMLCat"),
    (rf"\b(horse{W}|neigh{W}|whinn{W}|pony)\b", "animal", "ANMLHors"),
    (rf"\b(cow{W}|moo{W}|sheep|goat{W}|pig|pigs|oink{W}|donkey{W}|ox|oxen|cattle|bull|lamb{W}|camel{W}|llama)\b", "animal", "ANMLFarm"),
    (rf"\b(insect{W}|bee|bees|wasp{W}|fly|flies|mosquito{W}|cricket{W}|cicada{W}|beetle{W}|bug|bugs)\b", "animal", "ANMLInsc"),
    (rf"\b(frog{W}|toad{W}|croak{W})\b", "animal", "ANMLAmph"),
    (rf"\b(fish{W}|whale{W}|dolphin{W}|seal)\b", "animal", "ANMLAqua"),
    (rf"\b(snake{W}|lizard{W}|crocodile|alligator|turtle)\b", "animal", "ANMLRept"),
    (rf"\b(rat|rats|mouse|mice|squirrel{W}|rodent{W}|hamster)\b", "animal", "ANMLRdnt"),
    (rf"\b(monkey{W}|ape|apes|gorilla|chimp{W})\b", "animal", "ANMLPrim"),
    (rf"\b(bat|bats)\b", "animal", "ANMLBat"),
    (rf"\b(dragon{W}|wyvern{W}|drake)\b", "animal", "CREADrgn"),
    (rf"\b(bear{W}|boar{W}|deer|elk|moose|elephant{W}|mammoth{W}|rhino{W}|hippo{W}|hyena|wild_?animal{W}|animal{W}|growl{W}|roar{W}|snarl{W}|squeal{W}|hiss{W}|bite|bites|chomp{W})\b", "animal", "ANMLWild"),
    (rf"\b(monster{W}|creature{W}|beast{W}|spider{W}|scorpion{W}|troll{W}|ogre{W}|goblin{W}|zombie{W}|skeleton{W}|ghoul{W}|golem{W}|undead|wraith|ghost{W}|demon{W}|daemon{W}|giant)\b.*\b(die|death|dying|hit|hurt|pain|attack{W}|growl{W}|roar{W}|moan{W}|scream{W}|critdie|phys|aggro)\b", "animal", "CREAMnstr"),
    (rf"\b(sword{W}|blade{W}|sabre|saber|katana|scimitar|rapier)\b", "weapon", "WEAPSwrd"),
    (rf"\b(dagger{W}|knife|knives|stab{W}|slash{W}|cut)\b", "weapon", "WEAPKnif"),
    (rf"\b(mace{W}|club{W}|hammer_?hit|flail|cudgel{W}|staff|fist{W}|blunt)\b", "weapon", "WEAPBlnt"),
    (rf"\b(spear{W}|pike{W}|halberd{W}|lance{W}|axe|axes|battleaxe{W}|polearm)\b", "weapon", "WEAPPole"),
    (rf"\b(arrow{W}|bolt|bolts|quiver)\b", "weapon", "WEAPArro"),
    (rf"\b(bow|bows|crossbow{W}|longbow{W}|archer{W})\b", "weapon", "WEAPBow"),
    (rf"\b(catapult{W}|ballista{W}|trebuchet{W}|siege|ram)\b", "weapon", "WEAPSiege"),
    (rf"\b(armou?r|shield{W}|chainmail|maille|mail)\b", "weapon", "WEAPArmr"),
    (rf"\b(whip{W})\b", "weapon", "WEAPWhip"),
    (rf"\b(ricochet{W}|ric)\b", "weapon", "BLLTRico"),
    (rf"\b(bullet{W}|impact_?bullet|hitscan)\b", "weapon", "BLLTImpt"),
    (rf"\b(laser{W}|plasma|railgun|blaster{W}|lightning_?gun|beam)\b", "weapon", "LASRGun"),
    (rf"\b(shotgun{W})\b", "weapon", "GUNShotg"),
    (rf"\b(machine_?gun{W}|machinegun{W}|minigun{W}|mg|chaingun{W}|autocannon|gatling|automatic|assault_?rifle)\b", "weapon", "GUNAuto"),
    (rf"\b(rifle{W}|sniper{W}|musket{W})\b", "weapon", "GUNRif"),
    (rf"\b(pistol{W}|revolver{W}|handgun)\b", "weapon", "GUNPis"),
    (rf"\b(cannon{W}|howitzer{W}|mortar{W}|artillery|flak)\b", "weapon", "GUNCano"),
    (rf"\b(rocket{W}|missile{W}|launcher{W}|bazooka{W}|rpg)\b", "weapon", "AERORckt"),
    (rf"\b(reload{W}|cock{W}|clip|magazine|holster{W}|draw_?weapon|weapon_?switch|change_?weapon)\b", "weapon", "GUNMech"),
    (rf"\b(gun{W}|shot|shots|shoot{W}|gunshot{W}|gunfire|firing|weapon{W}|attack{W}|melee|combat|fight{W}|battle)\b", "weapon", "WEAPMisc"),
    (rf"\b(punch{W}|kick{W}|slap{W}|smack{W}|thump_?body|body_?hit|hit_?body|flesh)\b", "human", "FGHTImpt"),
    (rf"\b(bodyfall{W}|body_?fall|fall_?down|thud_?body)\b", "human", "FGHTBf"),
    (rf"\b(scream{W}|shriek{W}|yell{W}|shout{W})\b", "human", "VOXScrm"),
    (rf"\b(laugh{W}|giggl{W}|chuckl{W})\b", "human", "VOXLaff"),
    (rf"\b(grunt{W}|groan{W}|moan{W}|pain|hurt|ouch|ugh|oof|effort{W}|jump_?grunt|gasp{W}|gurp{W}|death|die|dies|dying)\b", "human", "VOXEfrt"),
    (rf"\b(breath{W}|breathe{W}|pant{W}|sigh{W}|yawn{W}|exhale{W}|inhale{W})\b", "human", "HMNBrth"),
    (rf"\b(cough{W})\b", "human", "HMNCough"),
    (rf"\b(sneez{W})\b", "human", "HMNSneez"),
    (rf"\b(snor{W})\b", "human", "HMNSnor"),
    (rf"\b(heartbeat{W}|heart)\b", "human", "HMNHart"),
    (rf"\b(kiss{W})\b", "human", "HMNKiss"),
    (rf"\b(burp{W})\b", "human", "HMNBurp"),
    (rf"\b(eat{W}|chew{W}|munch{W}|crunch{W}|bite_?food|meal|ration|food)\b", "human", "FOODEat"),
    (rf"\b(drink{W}|gulp{W}|slurp{W}|swallow{W}|potion)\b", "human", "FOODDrnk"),
    (rf"\b(cook{W}|fry{W}|frying|bak{W}|brew{W}|kitchen)\b", "human", "FOODCook"),
    (rf"\b(applause|clap{W})\b", "human", "CRWDApls"),
    (rf"\b(cheer{W}|hooray|hurray|yay|victory_?crowd)\b", "human", "CRWDCheer"),
    (rf"\b(crowd{W}|people|walla|army|soldiers)\b", "human", "CRWDMisc"),
    (rf"\b(cloth{W}|fabric{W}|rustl{W}|clothes|garment{W}|coat|cape|jacket|leather|dress{W}|wear{W}|equip{W}|unequip{W})\b", "human", "FOLYClth"),
    (rf"\b(hand|hands|grab{W}|pickup|pick_?up|take|drop_?item|rummag{W}|inventory|loot{W})\b", "human", "FOLYHand"),
    (rf"\b(splat{W}|squish{W}|squelch{W}|goo|gore|blood{W}|guts)\b", "human", "GORESqsh"),
    (rf"\b(whistl{W})\b", "human", "HMNMisc"),
    (rf"\b(saw|saws|sawing|sawmill)\b", "tool", "TOOLHand"),
    (rf"\b(drill{W}|grinder|chainsaw|jackhammer|power_?tool)\b", "tool", "TOOLPowr"),
    (rf"\b(hammer{W}|anvil{W}|smith{W}|blacksmith{W}|forg{W}|chisel{W}|chop{W}|axe_?wood|woodcut{W}|lumber{W}|pickaxe{W}|pick|mining|miner{W}|quarry{W}|dig{W}|shovel{W}|spade|scythe{W}|sickle|hoe|plough{W}|plow{W}|rake|wrench|screw{W}|nail{W}|file|filing|sand{W}ing|weav{W}|spin{W}|loom|tool{W}|build{W}|construct{W}|repair{W}|fix{W}|hammering|carpent{W}|masonry|stonemason{W}|smelt{W}|goldspin|sewing)\b", "tool", "TOOLHand"),
    (rf"\b(robot{W}|droid{W}|android|mech|mechs|cyborg{W})\b", "machine", "ROBTMvmt"),
    (rf"\b(servo{W}|actuator{W})\b", "machine", "MOTRSrvo"),
    (rf"\b(hydraulic{W}|pneumatic{W}|piston{W}|steam_?hiss|vent{W})\b", "machine", "MECHHydr"),
    (rf"\b(gear{W}|cog{W}|crank{W}|winch{W}|ratchet{W}|pulley{W}|clockwork)\b", "machine", "MECHGear"),
    (rf"\b(lever{W})\b", "machine", "MECHLvr"),
    (rf"\b(switch{W}|toggle{W})\b", "machine", "MECHSwtch"),
    (rf"\b(elevator{W}|lift|lifts)\b", "machine", "MACHElev"),
    (rf"\b(pump{W}|compressor{W})\b", "machine", "MACHPump"),
    (rf"\b(siren{W})\b", "machine", "ALRMSirn"),
    (rf"\b(alarm{W}|klaxon{W}|warning_?horn)\b", "machine", "ALRMElec"),
    (rf"\b(clock{W}|tick{W}|tock)\b", "machine", "CLOCKTick"),
    (rf"\b(spark{W}|electric{W}|electro{W}|shock{W}|zap{W}|taser|tesla)\b", "machine", "ELECZap"),
    (rf"\b(hum|humming|buzz{W}|transformer{W}|generator{W}|power_?plant|powerplant|reactor{W})\b", "machine", "ELECBuzz"),
    (rf"\b(teleport{W}|warp{W}|portal{W}|forcefield{W}|force_?field|shield_?up|energy|energi[sz]e{W}|power_?up|powerup{W}|powerdown|power_?down|charge{W}|recharg{W}|tractor_?beam|transporter)\b", "machine", "SCIEnrg"),
    (rf"\b(computer{W}|terminal{W}|console{W}|radar{W}|sonar{W}|scanner{W}|scan{W}|printer{W}|device{W}|machine{W}|mechanic{W}|mechanism{W}|factory|factories|conveyor{W}|industr{W}|mill|mills|press|crusher{W}|refiner{W}|processing|assembly|production|productn|manufactur{W}|drone)\b", "machine", "MACHMisc"),
    (rf"\b(camera{W}|shutter{W}|screen_?capture|snapshot)\b", "ui", "COMCam"),
    (rf"\b(phone{W}|telephone{W}|ring{W}|dial{W}|call{W})\b", "ui", "COMTelph"),
    (rf"\b(static|radio{W}|radclick|radclik|walkie)\b", "ui", "COMStatic"),
    (rf"\b(keyboard{W}|keyclick{W}|typing|typewriter{W}|type)\b", "ui", "CMPTKey"),
    (rf"\b(coin{W}|money|cash|gold|treasure{W}|jingle)\b", "ui", "OBJCoin"),
    (rf"\b(click{W}|clic|button{W}|press{W}|tap)\b", "ui", "UIClick"),
    (rf"\b(beep{W}|bleep{W}|blip{W}|ping{W}|ding{W}|dong|chime{W}|bell{W}|tone|tones|notify{W}|notification{W}|message{W}|alert{W}|warn{W}|error{W}|complete{W}|success{W}|fail{W}|confirm{W}|cancel{W}|login|logout|trash{W}|info{W}|information|question|attention|select{W}|menu{W}|hover{W}|ui|gui|interface|screen|window_?open|achievement{W}|level_?up|levelup|bonus{W}|item{W}|collect{W}|got_?item|extra_?life|life|lifeup|score{W}|highscore|countdown|count|timer|time_?up|timeout|lose|win|gameover|game_?over|victory|defeat|start|ready|go|finish{W}|lap|appear{W}|disappear{W}|spawn{W}|respawn{W}|magic{W}|spell{W}|heal{W}|healing|cast{W}|enchant{W}|bless{W}|curse{W}|invisib{W}|invulnerab{W}|haste|freeze|frozen|transform{W}|poof|puff|sparkle{W}|shimmer{W}|twinkle{W}|glitter{W}|chat{W}|newcomer|volume)\b", "ui", "UIMisc"),
    (rf"\b(forest{W}|wood_?land|jungle|tree{W}_?amb{W}|leaves_?amb)\b", "ambience", "AMBForst"),
    (rf"\b(city|town{W}|street{W}|urban|residential{W}|downtown|village)\b", "ambience", "AMBUrbn"),
    (rf"\b(market{W}|bazaar|shop{W}|tavern{W}|inn|pub|bar|restaurant)\b", "ambience", "AMBMrkt"),
    (rf"\b(farm{W}|barn|field{W}|pasture|meadow|countryside|rural|organic)\b", "ambience", "AMBFarm"),
    (rf"\b(harbou?r{W}|port|dock{W}|seaside|coast{W})\b", "ambience", "AMBSea"),
    (rf"\b(desert{W})\b", "ambience", "AMBDsrt"),
    (rf"\b(swamp{W}|marsh{W}|bog)\b", "ambience", "AMBSwmp"),
    (rf"\b(cave{W}|cavern{W}|dungeon{W}|underground|mine_?amb{W}|sewer{W}|tunnel{W}|crypt)\b", "ambience", "AMBUndr"),
    (rf"\b(traffic|trafic|road{W}|highway|motorway)\b", "ambience", "AMBTraf"),
    (rf"\b(war|warfare|battlefield|siege_?amb)\b", "ambience", "AMBWar"),
    (rf"\b(church{W}|temple{W}|monaster{W}|minaret{W}|mosque|chant{W}|holy)\b", "ambience", "AMBRlgn"),
    (rf"\b(room_?tone|roomtone|interior_?amb{W}|indoor{W}|hall{W}|room)\b", "ambience", "AMBRoom"),
    (rf"\b(industr{W}|factory_?amb{W}|power_?station|plant|blacksmith_?amb)\b", "ambience", "AMBInd"),
    (rf"\b(night{W}|evening|dusk|dawn|day|morning|summer|winter|spring|autumn|nature|outdoor{W}|park|garden{W}|wilderness|mountain{W}|valley|plain{W}|island)\b", "ambience", "AMBRurl"),
    (rf"\b(space|spaceship{W}|scifi|sci_?fi|alien{W}|hitech|tech)\b", "ambience", "AMBTech"),
    (rf"\b(amb{W}|ambien{W}|atmos{W}|background{W}|loop|loops|drone|tone|environment{W}|env|shanty|shanties|residence{W}|house{W}|housing|school{W}|university|hospital|recycle{W}|tip|monument{W}|windmill{W}|mill_?amb|commune{W}|pottery)\b", "ambience", "AMBMisc"),
    (rf"\b(wood{W}|log|logs|plank{W}|crate{W}|timber|barrel{W}|tree{W}|branch{W}|stick{W}|twig{W}|furniture|chair{W}|table{W})\b.*\b(break{W}|snap{W}|crack{W}|splinter{W}|fall{W}|collapse{W})", "impact", "WOODBrk"),
    (rf"\b(wood{W}|log|logs|plank{W}|crate{W}|timber|barrel{W}|tree{W}|branch{W}|stick{W}|twig{W}|wooden)\b", "impact", "WOODImpt"),
    (rf"\b(chain{W})\b", "impact", "CHAINMvmt"),
    (rf"\b(metal{W}|iron|steel|tin|can|cans|pipe{W}|clang{W}|clank{W}|gong{W}|anvil|pan|pot|bucket{W}|girder{W}|scrap)\b.*\b(break{W}|crash{W}|collapse{W}|debris)", "impact", "METLCrsh"),
    (rf"\b(metbrk|metal{W}|iron|steel|tin|can|cans|pipe{W}|clang{W}|clank{W}|clink{W}|chink{W}|ting{W}|gong{W}|pan|pot|bucket{W}|girder{W}|scrap|tink{W}|ding)\b", "impact", "METLImpt"),
    (rf"\b(ice|icecrash|icicle{W}|frozen)\b", "impact", "ICEImpt"),
    (rf"\b(snow{W})\b", "impact", "SNOWImpt"),
    (rf"\b(slid{W}|slide{W}|scrap{W}|scrape{W}|friction|rub{W}|drag{W}|grind{W})\b", "impact", "ROCKFric"),
    (rf"\b(rock{W}|stone{W}|rubble|boulder{W}|brick{W}|pebble{W}|masonry|wall{W}|concrete|marble)\b.*\b(break{W}|crash{W}|collapse{W}|crumbl{W}|fall{W}|debris|smash{W})", "impact", "ROCKCrsh"),
    (rf"\b(rock{W}|stone{W}|rubble|boulder{W}|brick{W}|pebble{W}|concrete|marble)\b", "impact", "ROCKImpt"),
    (rf"\b(dirt|sand|mud{W}|earth|soil|gravel|dust)\b", "impact", "DIRTImpt"),
    (rf"\b(collapse{W}|destroy{W}|destruction|demolition|crumbl{W}|rubble|debris|wreck{W}|building_?fall|destroy_?group)\b", "impact", "DESTRCrsh"),
    (rf"\b(paper{W}|page{W}|book{W}|scroll{W}|map|maps|letter{W}|card|cards|envelope)\b.*\b(rip{W}|tear{W})", "impact", "PAPRRip"),
    (rf"\b(paper{W}|page{W}|book{W}|scroll{W}|map|maps|letter{W}|card|cards|envelope|newspaper)\b", "impact", "PAPRHndl"),
    (rf"\b(ceramic{W}|pottery|plate{W}|dish{W}|cup|cups|mug{W}|tile|tiles)\b", "impact", "CERMImpt"),
    (rf"\b(plastic{W})\b", "impact", "PLASImpt"),
    (rf"\b(rubber{W}|bounc{W}|boing{W}|trampoline|ball{W}|spring{W}|jump{W}|bump{W}|reflect{W}|rebound{W})\b", "impact", "RUBRImpt"),
    (rf"\b(pop|pops|popping|plop{W}|bubble_?pop)\b", "impact", "TOONPop"),
    (rf"\b(bag{W}|sack{W}|backpack)\b", "impact", "OBJBag"),
    (rf"\b(key|keys|keychain)\b", "impact", "OBJKey"),
    (rf"\b(grass{W}|bush{W}|leaves|leaf|foliage|hedge{W}|shrub{W})\b", "impact", "VEGELeaf"),
    (rf"\b(hit{W}|impact{W}|thud{W}|thump{W}|bang{W}|knock{W}|collid{W}|smash{W}|crush{W}|break{W}|broke{W}|crack{W}|drop{W}|fall{W}|land{W}|slam{W}|clunk{W}|clonk{W}|whack{W}|bonk{W}|stomp|squash{W}|flop{W}|flip{W}|nudge|launch{W}|throw{W}|toss{W}|push{W}|pull{W}|move{W}|movement|roll{W}|rattle{W}|shake{W}|creak{W}|squeak{W}|wall_?end|wallstart|wallend|stick{W}|glue|burrow{W}|destroy{W}|kill{W}|dead|squish)\b", "impact", "OBJMisc"),
)
_COMPILED = [(re.compile(pattern), category, cat_id) for pattern, category, cat_id in RULES]
missing_ids = sorted({cat_id for _, _, cat_id in RULES} - set(UCS))
assert not missing_ids, f"CatIDs without UCS names: {missing_ids}"
SURFACES = ("gravel", "grass", "dirt", "sand", "snow", "wood", "metal", "stone", "concrete", "water", "mud", "carpet",
            "tile", "ice", "leaves", "leaf", "glass", "rock", "floor", "marble", "puddle")

ABBREVIATIONS = {
    "fs": "footstep", "amb": "ambience", "sfx": "", "snd": "", "wpn": "weapon", "expl": "explosion", "btn": "button",
    "mg": "machine gun", "ui": "interface", "gui": "interface", "lvl": "level", "bg": "background",
}
STOP_WORDS = {
    "usr", "share", "games", "game", "data", "sound", "sounds", "sfx", "audio", "snd", "base", "baseoa", "wav", "ogg",
    "flac", "mp3", "media", "res", "resources", "assets", "pak", "pk", "the", "techs", "megapack", "factions",
    "units", "units2", "tilesets", "tileset", "default", "common", "misc", "effects", "effect", "misc_sounds",
    "share", "wz", "base.wz", "stereo", "mono", "sample", "samples", "mod", "mods", "doc", "world", "tribes",
    "immovables", "workers", "buildings", "freedesktop", "stereo", "oga", "supertuxkart", "supertux",
    "warzone2100", "megaglest", "openarena", "wesnoth", "widelands", "freedroidrpg", "lincity", "warmux", "flare",
    "boswars", "tuxpaint", "hedgewars", "freeciv", "frozen", "bubble", "pingus", "etr", "bzflag", "pinball",
    "tecnoballz", "lmms", "kapman", "kbounce", "kgoldrunner", "bomber", "chromium", "invaders", "trigger", "rally",
    "lincity-ng", "1.16", "sfx2", "n", "s", "x", "a", "b", "c", "d", "l", "r", "v", "hi", "lo",
}


def words_of(text: str) -> list[str]:
    """Lower-case words of a path or name: camelCase, digits and separators split, abbreviations expanded."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    out = []
    for token in re.split(r"[^A-Za-z]+", text.lower()):
        token = ABBREVIATIONS.get(token, token)
        for word in token.split():
            if word and word not in STOP_WORDS and len(word) > 1:
                out.append(word)
    return out


def caption_for(source_path: str) -> str:
    """Readable English from the file and folder names: 'footstep gravel walking' -> 'footstep on gravel, walking'."""
    inner = source_path.split(":", 1)[-1]
    parts = [p for p in re.split(r"[/\\]", inner) if p]
    stem = parts[-1].rsplit(".", 1)[0] if parts else inner
    name = words_of(stem)
    context: list[str] = []
    for folder in reversed(parts[:-1]):
        for word in words_of(folder):
            if word not in name and word not in context:
                context.append(word)
        if len(context) >= 2:
            break
    name = [w for i, w in enumerate(name) if w not in name[:i]]
    if not name:
        name, context = context[:2], context[2:]
    for k, word in enumerate(name):
        if word in ("footstep", "footsteps", "step", "steps") and k + 1 < len(name) and name[k + 1] in SURFACES:
            name = name[:k + 1] + ["on"] + name[k + 1:]
            break
    caption = " ".join(name)
    if context[:2]:
        caption += ", " + " ".join(context[:2])
    return caption.strip(", ") or "sound effect"


def categorise(text: str) -> tuple[str, str, str, str] | None:
    """(category, UCS Category, UCS SubCategory, CatID) for a caption/path, or None when no rule fits.
    Words are also joined pairwise with '_' so rules can match two-word names (machine_gun)."""
    words = words_of(text)
    joined = " ".join(words + [f"{a}_{b}" for a, b in zip(words, words[1:])])
    for pattern, category, cat_id in _COMPILED:
        if pattern.search(joined):
            ucs_category, ucs_subcategory = UCS[cat_id]
            return category, ucs_category, ucs_subcategory, cat_id
    return None


# ------------------------------------------------------------------ licences (DEP-5)

def parse_dep5(text: str) -> list[tuple[list[str], str, str]] | None:
    """(file patterns, licence short name, copyright holders) per `Files:` paragraph, or None when
    the file is not machine-readable (DEP-5)."""
    if not text.lstrip().lower().startswith("format:"):
        return None
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            licence = fields["license"].split("\n", 1)[0].strip()
            holders = " ".join(x.strip() for x in fields.get("copyright", "").split("\n") if x.strip())
            paragraphs.append((fields["files"].split(), licence, holders))
    return paragraphs


def normalise_licence(short: str) -> str | None:
    """An ALLOWED licence code for a DEP-5 short name, or None. 'A or B': the first allowed one;
    'A and B': only when every part is allowed (the more restrictive copyleft one is recorded)."""
    short = short.strip().lower().replace(" ", " ")
    if " or " in short:
        for part in short.split(" or "):
            code = normalise_licence(part)
            if code:
                return code
        return None
    if " and " in short:
        codes = [normalise_licence(p) for p in short.split(" and ")]
        if not all(codes):
            return None
        for copyleft in ("GPL-3", "GPL-3+", "GPL-2+", "CC-BY-SA-4.0", "CC-BY-SA-3.0", "LGPL-3+", "LGPL-2.1+"):
            if copyleft in codes:
                return copyleft
        return codes[0]
    short = re.sub(r"\s+", "-", short)
    return ALLOWED.get(short)


def licence_for(paragraphs, path: str) -> tuple[str, str]:
    """(DEP-5 licence short name, holders) of the last paragraph whose pattern matches the path's end."""
    found = ("", "")
    candidates = {path}
    pieces = path.replace(":", "/").split("/")
    for k in range(len(pieces)):
        candidates.add("/".join(pieces[k:]))
    for patterns, licence, holders in paragraphs:
        for pattern in patterns:
            if pattern == "*" or any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
                found = (licence, holders)
                break
    return found


# ------------------------------------------------------------------ audio

def trim_bounds(audio: np.ndarray, sr: int) -> tuple[int, int]:
    """First and last sample (exclusive) above SILENCE_DB of the peak, in 5 ms blocks."""
    mono = np.abs(audio).max(axis=1)
    peak = float(mono.max()) if mono.size else 0.0
    if peak <= 0:
        return 0, 0
    threshold = peak * 10 ** (SILENCE_DB / 20)
    loud = np.flatnonzero(mono > threshold)
    block = max(1, sr // 200)
    start = max(0, int(loud[0]) - block)
    end = min(len(mono), int(loud[-1]) + block)
    return start, end


def fingerprint(audio: np.ndarray, sr: int) -> str:
    """Hash of the down-mixed, peak-normalised 10 ms loudness envelope (2 dB steps): one value for
    the same sound at another rate, format or gain."""
    mono = audio.mean(axis=1)
    peak = float(np.abs(mono).max())
    if peak <= 0:
        return "silent"
    mono = mono / peak
    hop = max(1, sr // 100)
    n = len(mono) // hop
    if n == 0:
        env = np.array([np.sqrt(np.mean(mono ** 2))])
    else:
        env = np.sqrt(np.mean(mono[:n * hop].reshape(n, hop) ** 2, axis=1))
    db = np.round(20 * np.log10(np.maximum(env, 1e-4)) / 2).astype(np.int8)
    return hashlib.sha1(db.tobytes()).hexdigest()[:20]


def read_any(data: bytes) -> tuple[np.ndarray, int, str]:
    with sf.SoundFile(io.BytesIO(data)) as fh:
        audio = fh.read(dtype="float32", always_2d=True)
        return audio, fh.samplerate, fh.subtype


# ------------------------------------------------------------------ steps

def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def fetch(pkg: Package, cache: Path) -> Path:
    """The package extracted under cache/extract/PKG (downloaded at its pinned version first)."""
    if pkg.name in FORBIDDEN_PACKAGES:
        raise SystemExit(f"error: {pkg.name} is an evaluation-set source and must not be read (integrity rule)")
    target = cache / "extract" / pkg.name
    marker = target / ".extracted"
    if marker.is_file() and marker.read_text().strip() == pkg.version:
        return target
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    file_version = pkg.version.replace(":", "%3a")
    found = sorted(debs.glob(f"{pkg.name}_{file_version}_*.deb"))
    if not found:
        run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=debs)
        found = sorted(debs.glob(f"{pkg.name}_{file_version}_*.deb"))
        if not found:
            raise SystemExit(f"error: apt-get download {pkg.name}={pkg.version} gave no .deb in {debs}")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(found[0]), str(target)])
    marker.write_text(pkg.version)
    return target


def audio_members(root: Path):
    """(source path relative to the package root, zero-argument byte reader) for every audio file,
    also inside zip-format archives ('archive:inner/path'), in sorted order."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        low = rel.lower()
        if low.endswith(AUDIO_SUFFIXES):
            yield rel, path.read_bytes
        elif low.endswith(ARCHIVE_SUFFIXES) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for inner in sorted(zf.namelist()):
                    if inner.lower().endswith(AUDIO_SUFFIXES):
                        yield f"{rel}:{inner}", (lambda z=path, n=inner: zipfile.ZipFile(z).read(n))


def clip_id(pkg_name: str, source_path: str, used: set[str]) -> str:
    short = pkg_name.replace("-data", "").replace("-common", "").replace("-game", "").replace("-1.16", "")
    inner = source_path.split(":", 1)[-1]
    parts = [p for p in inner.rsplit(".", 1)[0].split("/") if p]
    base = re.sub(r"[^a-z0-9]+", "_", "_".join([short, *parts[-2:]]).lower()).strip("_")[:80]
    cid, n = base, 2
    while cid in used:
        cid, n = f"{base}_{n}", n + 1
    used.add(cid)
    return cid


def process_package(pkg: Package, cache: Path, out: Path, report: Counter, seen: dict[str, str],
                    used_ids: set[str]) -> list[dict]:
    """Index rows of one package's clips, their audio written under out/audio (skips are counted)."""
    root = fetch(pkg, cache)
    copyright_file = root / "usr/share/doc" / pkg.name / "copyright"
    if not copyright_file.is_file():
        report[f"{pkg.name}: skipped, no copyright file"] += 1
        return []
    text = copyright_file.read_text(encoding="utf-8", errors="replace")
    paragraphs = parse_dep5(text)
    if paragraphs is None and not pkg.licence:
        report[f"{pkg.name}: skipped, copyright file not machine-readable"] += 1
        return []
    write_bytes_atomic(out / "licenses" / f"{pkg.name}.copyright", text.encode("utf-8"))
    rows = []
    for source_path, read in audio_members(root):
        if NOT_FOLEY.search(source_path.lower()):
            report[f"{pkg.name}: music/speech path"] += 1
            continue
        if paragraphs is not None:
            short, holders = licence_for(paragraphs, source_path)
        else:
            short, holders = pkg.licence, ""
        code = normalise_licence(short)
        if code is None:
            report[f"{pkg.name}: licence not allowed or unclear ({short or 'none'})"] += 1
            continue
        caption = caption_for(source_path)
        cats = categorise(caption + " " + source_path.split(":", 1)[-1])
        if cats is None:
            report[f"{pkg.name}: no Foley category"] += 1
            continue
        try:
            data = read()
            audio, sr, subtype = read_any(data)
        except Exception as err:  # noqa: BLE001 - any undecodable file is skipped and counted
            report[f"{pkg.name}: undecodable ({type(err).__name__})"] += 1
            continue
        start, end = trim_bounds(audio, sr)
        if (end - start) / sr < MIN_SECONDS:
            report[f"{pkg.name}: silent or shorter than {MIN_SECONDS} s"] += 1
            continue
        windows = []
        win = int(MAX_SECONDS * sr)
        for k in range(MAX_WINDOWS):
            a = start + k * win
            if a >= end or (k and (end - a) / sr < 2.0):
                break
            windows.append((a, min(end, a + win)))
        credit = f"{pkg.upstream}" + (f"; {holders[:300]}" if holders and holders not in pkg.upstream else "")
        for w, (a, b) in enumerate(windows):
            piece = audio[a:b]
            fp = fingerprint(piece, sr)
            if fp in seen:
                report[f"{pkg.name}: duplicate of {seen[fp].split('/')[0]}"] += 1
                continue
            seen[fp] = f"{pkg.name}/{source_path}"
            cid = clip_id(pkg.name, source_path + (f"_w{w + 1}" if len(windows) > 1 else ""), used_ids)
            trimmed = (a / sr) + (len(audio) - b) / sr
            keep_ogg = (source_path.lower().endswith((".ogg", ".oga")) and subtype == "VORBIS"
                        and len(windows) == 1 and trimmed < OGG_KEEP_TRIM_S)
            ext = "ogg" if keep_ogg else "flac"
            rel = f"audio/{cats[0]}/{cid}.{ext}"
            target = out / rel
            if not target.is_file():
                if keep_ogg:
                    write_bytes_atomic(target, data)
                else:
                    buf = io.BytesIO()
                    sf.write(buf, piece, sr, format="FLAC", subtype="PCM_24" if subtype in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE") else "PCM_16")
                    write_bytes_atomic(target, buf.getvalue())
            if keep_ogg:
                modification = "unmodified copy of the source file"
            else:
                what = ["leading/trailing silence trimmed"] if trimmed >= 0.001 else []
                if len(windows) > 1:
                    what.append(f"window {w + 1} of {len(windows)} ({MAX_SECONDS:.0f} s each)")
                what.append("stored as FLAC at the source's rate and channels")
                modification = "modified from the original: " + ", ".join(what)
            window_tag = f"#t={a / sr:.2f},{b / sr:.2f}" if len(windows) > 1 else ""
            rows.append({
                "id": cid, "file": rel, "caption": caption + (f" (part {w + 1})" if len(windows) > 1 else ""),
                "category": cats[0], "seconds": f"{(len(audio) if keep_ogg else b - a) / sr:.3f}", "licence": code, "attribution": credit,
                "source_package": pkg.name, "source_path": source_path + window_tag,
                "ucs_category": cats[1], "ucs_subcategory": cats[2], "cat_id": cats[3], "sr": sr,
                "channels": audio.shape[1], "source_version": pkg.version, "modification": modification,
            })
            report[f"{pkg.name}: kept"] += 1
    return rows


def shared_train_rows(sfx_root: Path, out: Path, seen: dict[str, str], used_ids: set[str], report: Counter) -> list[dict]:
    """The train split of ../shared/sfx (the only way its eight packages' clips enter), byte copies."""
    allowed = {"CC-BY-SA-3.0", "CC-BY-3.0", "CC0-1.0", "public-domain", "GPL-2+"}
    rows = []
    with open(sfx_root / "manifest.csv", newline="", encoding="utf-8") as fh:
        manifest = sorted(csv.DictReader(fh), key=lambda r: r["id"])
    for r in manifest:
        if r["split"] != "train":
            continue
        if r["license"] not in allowed:
            report[f"shared/sfx: licence {r['license']} not allowed"] += 1
            continue
        src = sfx_root / r["file"]
        audio, sr = sf.read(src, dtype="float32", always_2d=True)
        fp = fingerprint(audio, sr)
        if fp in seen:
            report["shared/sfx: duplicate"] += 1
            continue
        seen[fp] = f"shared/{r['id']}"
        used_ids.add(r["id"])
        rel = f"audio/{r['category']}/{r['id']}.flac"
        if not (out / rel).is_file():
            write_bytes_atomic(out / rel, src.read_bytes())
        cats = categorise(r["caption"] + " " + r["source_path"].split(":", 1)[-1])
        ucs = cats[1:] if cats and cats[0] == r["category"] else DEFAULT_UCS[r["category"]]
        rows.append({
            "id": r["id"], "file": rel, "caption": r["caption"], "category": r["category"], "seconds": r["seconds"],
            "licence": r["license"], "attribution": r["attribution"], "source_package": r["source_package"],
            "source_path": r["source_path"], "ucs_category": ucs[0], "ucs_subcategory": ucs[1], "cat_id": ucs[2],
            "sr": sr, "channels": audio.shape[1], "source_version": SOURCE_PACKAGE_VERSIONS.get(r["source_package"], ""),
            "modification": MODIFICATION_NOTE,
        })
        report["shared/sfx train: kept"] += 1
    for name in sorted((sfx_root / "licenses").iterdir()):
        if name.is_file():
            write_bytes_atomic(out / "licenses" / name.name, name.read_bytes())
    return rows


# UCS names for a shared clip whose caption no rule reads as its manifest category.
DEFAULT_UCS = {
    "footsteps": ("FOOTSTEPS", "HUMAN", ""), "impact": ("DESIGNED", "MISC", ""), "door": ("DOORS", "MISC", ""),
    "glass": ("GLASS", "MISC", ""), "water": ("WATER", "MISC", ""), "rain": ("RAIN", "GENERAL", ""),
    "wind": ("WIND", "GENERAL", ""), "fire": ("FIRE", "BURNING", ""), "engine": ("VEHICLES", "MISC", ""),
    "vehicle": ("VEHICLES", "MISC", ""), "animal": ("ANIMALS", "MISC", ""), "bird": ("BIRDS", "MISC", ""),
    "human": ("HUMAN", "MISC", ""), "machine": ("MACHINES", "MISC", ""), "tool": ("TOOLS", "HAND", ""),
    "weapon": ("WEAPONS", "MISC", ""), "explosion": ("EXPLOSIONS", "MISC", ""), "ui": ("USER INTERFACE", "MISC", ""),
    "ambience": ("AMBIENCE", "MISC", ""),
}

ALL_COLUMNS = (*INDEX_COLUMNS, *INDEX_EXTRA_COLUMNS)


def write_index(out: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ALL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in sorted(rows, key=lambda r: (CATEGORIES.index(r["category"]), r["id"])):
        writer.writerow({k: r[k] for k in ALL_COLUMNS})
    write_text_atomic(out / "index.csv", buf.getvalue())


def attribution_markdown(rows: list[dict], title: str, copied: list[str]) -> str:
    counts = Counter(r["licence"] for r in rows)
    lines = [f"# {title}: attribution and licences", "",
             f"{len(rows)} clips in {len({r['category'] for r in rows})} categories, built by "
             "`scripts/build_sound_library.py` from Debian 12 packages (versions per clip below and in "
             "`index.csv`). Each clip says how it differs from its source.", "",
             "A stem generated from a clip is an adaptation of that clip: share-alike (CC BY-SA) and GPL/LGPL "
             "clips pass their terms on to it; CC BY clips need the credit; CC0/public-domain clips have no "
             "conditions.", "", "## Licences", "", "| licence | clips | link |", "|---|---:|---|"]
    for code in sorted(counts):
        info = LICENCES.get(code)
        lines.append(f"| {info.name if info else code} | {counts[code]} | {(info.url if info else '') or '-'} |")
    lines += ["", "## Clips", ""]
    for category in CATEGORIES:
        group = sorted((r for r in rows if r["category"] == category), key=lambda r: r["id"])
        if not group:
            continue
        lines += [f"### {category}", ""]
        for r in group:
            info = LICENCES.get(r["licence"])
            lines.append(f"- `{r['id']}` (`{r['file']}`): \"{r['caption']}\". Licence: "
                         f"{info.name if info else r['licence']}{' - share-alike' if info and info.share_alike else ''}. Credit: {r['attribution']}. Source: Debian package "
                         f"{r['source_package']} {r['source_version']}, `{r['source_path']}`; {r['modification']}.")
        lines.append("")
    lines += ["## Licence texts (licenses/)", ""]
    lines += [f"- `licenses/{name}`" for name in copied]
    return "\n".join(lines) + "\n"


def finish(out: Path, rows: list[dict], title: str) -> dict:
    """Write index.csv, ATTRIBUTION.md and the licence texts; remove files no row uses."""
    needed = {f"{r['source_package']}.copyright" for r in rows}
    for r in rows:
        text = COMMON_LICENCE_TEXTS.get(r["licence"])
        if text:
            needed.add(f"{text}.txt")
            src = Path("/usr/share/common-licenses") / text
            if not (out / "licenses" / f"{text}.txt").is_file():
                if not src.is_file():
                    raise SystemExit(f"error: the licence text {src} is missing")
                write_bytes_atomic(out / "licenses" / f"{text}.txt", src.read_bytes())
    lic_dir = out / "licenses"
    keep_files = {(out / r["file"]).resolve() for r in rows}
    for f in sorted(lic_dir.iterdir()) if lic_dir.is_dir() else []:
        pkg = f.name.split("__")[0].rsplit(".", 1)[0]
        if f.name in needed or any(f.name.startswith(f"{r}__") for r in {r["source_package"] for r in rows}):
            keep_files.add(f.resolve())
        elif pkg not in {r["source_package"] for r in rows}:
            f.unlink()
        else:
            keep_files.add(f.resolve())
    for stale in sorted((out / "audio").rglob("*"), reverse=True):
        if stale.is_file() and stale.resolve() not in keep_files:
            stale.unlink()
        elif stale.is_dir() and not any(stale.iterdir()):
            stale.rmdir()
    copied = sorted(p.name for p in lic_dir.iterdir())
    write_index(out, rows)
    write_text_atomic(out / "ATTRIBUTION.md", attribution_markdown(rows, title, copied))
    audio_bytes = sum((out / r["file"]).stat().st_size for r in rows)
    return {"clips": len(rows), "seconds": sum(float(r["seconds"]) for r in rows), "audio_bytes": audio_bytes,
            "total_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
            "per_category": dict(Counter(r["category"] for r in rows)),
            "per_package": dict(Counter(r["source_package"] for r in rows)),
            "licences": dict(Counter(r["licence"] for r in rows))}


def build_full(out: Path, cache: Path, sfx_root: Path, packages: list[Package]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report: Counter = Counter()
    seen: dict[str, str] = {}
    used_ids: set[str] = set()
    rows = shared_train_rows(sfx_root, out, seen, used_ids, report) if (sfx_root / "manifest.csv").is_file() else []
    for pkg in packages:
        print(f"[{pkg.name} {pkg.version}]", flush=True)
        rows += process_package(pkg, cache, out, report, seen, used_ids)
    summary = finish(out, rows, "Sound library")
    summary["report"] = dict(sorted(report.items()))
    write_text_atomic(out / "build_report.json", json.dumps(summary, indent=1, sort_keys=True))
    return summary


def family(row: dict) -> str:
    """One sound's variants share a family: numbered takes and windows of one file."""
    stem = re.sub(r"(_w\d+)?$", "", row["id"])
    return re.sub(r"[\d_]+$", "", stem) or stem


def select_starter(rows: list[dict], full: Path, max_mb: float, per_category: int) -> list[dict]:
    """Per category, round-robin over UCS subcategories and source packages, one clip per family
    first, clips up to 12 s, within max_mb/19 of audio; order by a hash of the id so
    the choice is deterministic and not alphabetical."""
    budget = max_mb * 1e6 / len(CATEGORIES)
    chosen = []
    for category in CATEGORIES:
        group = [r for r in rows if r["category"] == category]
        size = {r["id"]: (full / r["file"]).stat().st_size for r in group}
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in sorted(group, key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest()):
            groups[(r["ucs_subcategory"], r["source_package"])].append(r)
        order = sorted(groups, key=lambda k: (-len(groups[k]), k))
        used_fam: set[str] = set()
        picks: list[dict] = []
        total = 0.0
        for strict in (True, False):
            progress = True
            while progress and len(picks) < per_category:
                progress = False
                for key in order:
                    for r in groups[key]:
                        if r in picks or (strict and family(r) in used_fam):
                            continue
                        if float(r["seconds"]) > 12 or total + size[r["id"]] > budget:
                            continue
                        picks.append(r)
                        used_fam.add(family(r))
                        total += size[r["id"]]
                        progress = True
                        break
                    if len(picks) >= per_category:
                        break
        chosen += picks
    return chosen


def build_starter(out: Path, full: Path, max_mb: float, per_category: int) -> dict:
    with open(full / "index.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    picks = select_starter(rows, full, max_mb, per_category)
    missing = [c for c in CATEGORIES if not any(r["category"] == c for r in picks)]
    if missing:
        raise SystemExit(f"error: the starter set has no clip for {', '.join(missing)}")
    for r in picks:
        target = out / r["file"]
        data = (full / r["file"]).read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            write_bytes_atomic(target, data)
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    packages = {r["source_package"] for r in picks}
    for f in sorted((full / "licenses").iterdir()):
        if f.name.split("__")[0].removesuffix(".copyright") in packages:
            write_bytes_atomic(out / "licenses" / f.name, f.read_bytes())
    summary = finish(out, picks, "Starter sound library")
    if summary["audio_bytes"] > max_mb * 1e6:
        raise SystemExit(f"error: the starter audio takes {summary['audio_bytes'] / 1e6:.1f} MB, over {max_mb} MB")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="build the full library into --out")
    mode.add_argument("--starter", action="store_true", help="build the starter set into --out from --full-dir")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--full-dir", type=Path, default=Path.home() / ".cache/foley_studio/sound_library",
                        help="the full library the starter set is chosen from (built first if missing)")
    parser.add_argument("--cache", type=Path, default=Path("/work/cache") if Path("/work/cache").is_dir()
                        else Path.home() / ".cache/foley_studio/debs", help="downloaded and extracted packages")
    parser.add_argument("--sfx-root", type=Path, default=REPO.parent / "shared" / "sfx")
    parser.add_argument("--packages", nargs="*", help="only these packages (default: all of PACKAGES)")
    parser.add_argument("--max-mb", type=float, default=60.0, help="starter set: at most this much audio")
    parser.add_argument("--per-category", type=int, default=150, help="starter set: at most this many clips a category")
    args = parser.parse_args(argv)
    if args.full:
        chosen = [p for p in PACKAGES if not args.packages or p.name in args.packages]
        summary = build_full(args.out.expanduser(), args.cache.expanduser(), args.sfx_root, chosen)
    else:
        full = args.full_dir.expanduser()
        if not (full / "index.csv").is_file():
            build_full(full, args.cache.expanduser(), args.sfx_root, list(PACKAGES))
        summary = build_starter(args.out, full, args.max_mb, args.per_category)
    print(json.dumps({k: v for k, v in summary.items() if k != "report"}, indent=1, sort_keys=True))
    if "report" in summary:
        print(json.dumps(summary["report"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
