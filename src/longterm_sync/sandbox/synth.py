"""A deterministic synthetic study: participants, schedules, watch results, feedback, videos.

Everything derives from ``seed`` and the pinned ``today``, so two runs with the same
parameters produce the same bytes and a test can state what it expects. The study has the
awkward parts of real ones: participants watching face down or without accelerometer data,
sessions longer or shorter than the video, skipped questions, two comments on one video,
uploads posted days late (out of date order), missing-video reports (some for a video that
was not due that day), participants changing phone halfway, an orphan account and optional
poison rows. Results are generated lazily, one participant at a time, because a
full-size study does not fit in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..atomic import write_bytes_atomic
from ..ids import external_id
from ..timeutil import WARSAW

SURNAME = "Stress_test"
FIRST_PHONE = 1234567
VIDEO_NAMES = (
    "subset1/clip_A.mp4",
    "subset1/clip_B.mp4",
    "subset2/clip_C.mp4",
    "subset2/clip_D.mp4",
    "subset2/nested/clip_E.mp4",
    "clip_F.mp4",
)
LATE_DAYS = 2  # results of this many days are posted after the newer ones


@dataclass(frozen=True)
class StudyParams:
    users: int = 5
    days: int = 8
    samples: int = 1800
    video_mb: float = 1.0
    seed: int = 1
    today: date = field(default_factory=lambda: datetime.now(WARSAW).date())
    orphans: int = 1
    poison: int = 0

    @property
    def salt(self) -> str:
        return f"sandbox-salt-{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "days": self.days,
            "samples": self.samples,
            "video_mb": self.video_mb,
            "seed": self.seed,
            "today": self.today.isoformat(),
            "orphans": self.orphans,
            "poison": self.poison,
        }


@dataclass(frozen=True)
class Post:
    """One request of the phone: route name (``watch-results``...) and JSON body."""

    route: str
    body: dict[str, Any]


@dataclass
class SynthParticipant:
    index: int
    name: str
    surname: str
    phone: str
    external_id: str
    start: datetime
    stop: datetime
    schedule: dict[str, Any]  # as the experimenter writes it: name/surname/phone included
    face_down: bool
    feedback_twice: bool
    late: bool
    poison: bool
    changes_phone: bool = False  # a new phone (and OS) from the study's middle day on
    reports_not_due: bool = False  # also reports a missing video that was not due that day

    @property
    def payload(self) -> dict[str, Any]:
        """What a client sends: personal data removed."""
        return {k: v for k, v in self.schedule.items() if k not in ("name", "surname", "phone")}


def _text(pol: str, eng: str, nor: str = "Lorem ipsum") -> list[dict[str, str]]:
    return [
        {"language": "pol", "text": pol},
        {"language": "eng", "text": eng},
        {"language": "nor", "text": nor},
    ]


MOS_LABELS = (
    ("1. Zła", "1. Bad"),
    ("2. Słaba", "2. Poor"),
    ("3. Umiarkowana", "3. Fair"),
    ("4. Dobra", "4. Good"),
    ("5. Wspaniała", "5. Excellent"),
)


def reply_form() -> list[dict[str, Any]]:
    """The questions of schedule-example.json: MOS q1, yes/no q2, TEXT q3, QUALTRICS last."""
    return [
        {
            "optional_id": "q1",
            "type": "MOS",
            "buttons": [
                {"value": i + 1, "button_text": _text(pol, eng)}
                for i, (pol, eng) in enumerate(MOS_LABELS)
            ],
            "description": _text(
                "Oceń jakość wideo w skali od 1 do 5",
                "Assess the video quality on scale of 1 to 5",
            ),
        },
        {
            "optional_id": "q2",
            "type": "MOS",
            "buttons": [
                {"value": True, "button_text": _text("Tak", "Yes", "Ja")},
                {"value": False, "button_text": _text("Nie", "No", "Nein")},
            ],
            "description": _text(
                "Czy obejrzałeś/aś cały film bez przewijania do przodu?",
                "Did you watch the whole movie without video seeking?",
            ),
        },
        {
            "optional_id": "q3",
            "type": "TEXT",
            "description": _text("Co sądzisz?", "What do you think about the video?"),
        },
        {
            "optional_id": "q4",
            "type": "QUALTRICS",
            "qualtrics_url": "https://survey.qualtrics.com/jfe/form/SV_sandbox",
            "description": _text(
                "Dodatkowe pytania na stronie WWW", "Additional question on WWW page"
            ),
        },
    ]


def video_duration_ms(video: str) -> int:
    """Stable per video name: 60 to 150 seconds."""
    digest = hashlib.sha256(video.encode("utf-8")).digest()
    return 60_000 + int.from_bytes(digest[:4], "big") % 90_001


def _entry(day: date, services: list[str]) -> dict[str, Any]:
    return {
        "start": f"{day.isoformat()}T00:00:00",
        "end": f"{day.isoformat()}T23:59:59",
        "service": [
            {"service_name": chr(ord("A") + i), "video": v} for i, v in enumerate(services)
        ],
        "reply_form": reply_form(),
    }


class Study:
    """The study for ``params``; participants are cheap, posts are generated on demand."""

    def __init__(self, params: StudyParams) -> None:
        self.params = params
        self.participants = [self._participant(i) for i in range(1, params.users + 1)]

    @property
    def first_day(self) -> date:
        return self.params.today - timedelta(days=self.params.days - 1)

    @property
    def last_day(self) -> date:
        return self.params.today + timedelta(days=3)

    def _services(self, index: int, day: date) -> list[str]:
        n = (day - self.first_day).days
        first = VIDEO_NAMES[(index + n) % len(VIDEO_NAMES)]
        if n % 3 == 2:
            return [first, VIDEO_NAMES[(index + n + 3) % len(VIDEO_NAMES)]]
        return [first]

    def _participant(self, index: int) -> SynthParticipant:
        p = self.params
        name = f"Long_{index:03d}"
        phone = str(FIRST_PHONE + index - 1)
        ext = external_id(name, SURNAME, phone, p.salt)
        days = [self.first_day + timedelta(days=d) for d in range(p.days + 3)]
        schedule = {
            "name": name,
            "surname": SURNAME,
            "phone": phone,
            "language": "PL" if index % 2 else "EN",
            "external_id": ext,
            "comments": "synthetic participant",
            "schedule": [_entry(day, self._services(index, day)) for day in days],
        }
        return SynthParticipant(
            index=index,
            name=name,
            surname=SURNAME,
            phone=phone,
            external_id=ext,
            start=datetime.combine(self.first_day, time(), WARSAW),
            stop=datetime.combine(self.last_day, time(23, 59, 59), WARSAW),
            schedule=schedule,
            face_down=index % 4 == 2,
            feedback_twice=index % 2 == 1,
            late=index % 3 == 1,
            poison=index <= p.poison,
            changes_phone=index % 5 == 3,
            reports_not_due=index % 4 == 0,
        )

    # -- uploads --------------------------------------------------------------------------

    def posts(self, participant: SynthParticipant) -> Iterator[Post]:
        """Every request the participant's phone makes, in upload order."""
        rng = random.Random(f"{self.params.seed}/{participant.index}")
        watched: list[tuple[datetime, str, str]] = []
        for offset in range(self.params.days):
            day = self.first_day + timedelta(days=offset)
            for i, video in enumerate(self._services(participant.index, day)):
                if rng.random() < 0.1:
                    continue  # not watched that day
                when = datetime.combine(day, time(17 + i, rng.randrange(60), rng.randrange(60)))
                when += timedelta(microseconds=rng.randrange(1000) * 1000)
                watched.append((when, video, chr(ord("A") + i)))
        if participant.late and len(watched) > 2 * LATE_DAYS:
            # offline for a while: older results reach the server after newer ones
            a = len(watched) // 2 - LATE_DAYS
            watched = watched[:a] + watched[a + LATE_DAYS :] + watched[a : a + LATE_DAYS]
        for n, (when, video, service) in enumerate(watched):
            result = self.result(participant, rng, when, video, service, n)
            yield Post("watch-results", {"date": _naive(when), "result": result})
        if participant.poison:
            yield Post(
                "watch-results",
                {"date": _naive(watched[0][0] if watched else self._noon()), "result": "poison"},
            )
        if watched:
            when, video, _ = watched[0]
            comments = ["Dobra jakość, ale trochę za ciemno.", "Ok"]
            for k in range(2 if participant.feedback_twice else 1):
                at = when + timedelta(minutes=2 + 30 * k, microseconds=889000)
                yield Post(
                    "feedback-comments",
                    {"video": video, "date": _naive(at), "comment": comments[k]},
                )
        if participant.index % 2 == 0:
            day = self.first_day + timedelta(days=min(1, self.params.days - 1))
            video = self._services(participant.index, day)[0]
            yield Post(
                "missing-videos",
                {"date": _naive(datetime.combine(day, time(8, 15))), "video": video},
            )
        if participant.reports_not_due:
            day = self.first_day + timedelta(days=min(2, self.params.days - 1))
            due = self._services(participant.index, day)
            video = next(v for v in VIDEO_NAMES if v not in due)
            yield Post(
                "missing-videos",
                {"date": _naive(datetime.combine(day, time(7, 30))), "video": video},
            )

    @property
    def middle_day(self) -> date:
        """The day participants with ``changes_phone`` start using their new phone."""
        return self.first_day + timedelta(days=self.params.days // 2)

    def day_posts(self, participant: SynthParticipant, day: date) -> Iterator[Post]:
        """What the phone posts for one more day after the study's ``days`` (the nightly
        backup's demo and bench grow the study by a day): its results and one comment."""
        rng = random.Random(f"{self.params.seed}/{participant.index}/{day.isoformat()}")
        n = (day - self.first_day).days * 2
        for i, video in enumerate(self._services(participant.index, day)):
            when = datetime.combine(day, time(17 + i, rng.randrange(60), rng.randrange(60)))
            result = self.result(participant, rng, when, video, chr(ord("A") + i), n + i)
            yield Post("watch-results", {"date": _naive(when), "result": result})
            if i == 0:
                at = when + timedelta(minutes=3)
                yield Post(
                    "feedback-comments", {"video": video, "date": _naive(at), "comment": "Ok"}
                )

    def _noon(self) -> datetime:
        return datetime.combine(self.params.today, time(12))

    def result(
        self,
        participant: SynthParticipant,
        rng: random.Random,
        when: datetime,
        video: str,
        service: str,
        n: int,
    ) -> dict[str, Any]:
        """A result shaped like results-example.json, every key present."""
        duration = video_duration_ms(video)
        mood = rng.random()
        watched_ms = duration
        if mood < 0.1:
            watched_ms = int(duration * 1.25)  # paused, rewound: longer than the video
        elif mood < 0.2:
            watched_ms = int(duration * 0.6)  # stopped early
        end = when - timedelta(seconds=40)
        start = end - timedelta(milliseconds=watched_ms)
        samples = max(1, watched_ms // 250)
        brightness = round(rng.uniform(0.2, 0.9), 3)
        orientation = "LANDSCAPE_LEFT" if rng.random() < 0.8 else "PORTRAIT"
        playback = {
            "playing": [True] * samples,
            "timestamp": [_ms(start + timedelta(milliseconds=250 * k)) for k in range(samples)],
            "brightness": [brightness] * samples,
            "position_ms": [min(duration, 250 * k + 105) for k in range(samples)],
            "fullscreen_status": ["FULLSCREEN"] * samples,
            "phone_orientation": [orientation] * samples,
        }
        s = self.params.samples
        step = timedelta(milliseconds=max(1, watched_ms // max(1, s)))
        stamps = [_ms(start + step * k) for k in range(s)]
        gyro = {
            "x": [round(rng.gauss(0, 0.3), 5) for _ in range(s)],
            "y": [round(rng.gauss(0, 0.3), 5) for _ in range(s)],
            "z": [round(rng.gauss(0, 0.2), 5) for _ in range(s)],
            "timestamp": stamps,
        }
        no_accel = n % 7 == 3
        if no_accel:
            accel: dict[str, list[Any]] = {"x": [], "y": [], "z": [], "timestamp": []}
        elif participant.face_down:
            accel = {
                "x": [round(rng.gauss(0, 0.01), 5) for _ in range(s)],
                "y": [round(rng.gauss(0, 0.01), 5) for _ in range(s)],
                "z": [round(rng.gauss(-0.98, 0.005), 5) for _ in range(s)],
                "timestamp": stamps,
            }
        else:
            accel = {
                "x": [round(rng.gauss(0.1, 0.08), 5) for _ in range(s)],
                "y": [round(rng.gauss(-0.35, 0.08), 5) for _ in range(s)],
                # held in a hand, screen tilted towards the face: well above the -0.8 cut
                "z": [round(rng.gauss(0.55, 0.08), 5) for _ in range(s)],
                "timestamp": stamps,
            }
        form_start = end + timedelta(seconds=1)
        skip_q2 = rng.random() < 0.15
        content: list[dict[str, Any]] = []
        for k, question in enumerate(reply_form()):
            answer: Any
            if question["optional_id"] == "q1":
                answer = rng.randint(1, 5)
            elif question["optional_id"] == "q2":
                answer = None if skip_q2 else watched_ms >= duration
            elif question["type"] == "TEXT":
                answer = rng.choice(["Krótkie i mało interesujące.", "Fajne!", "", "ok"])
            else:
                answer = None
            asked = form_start + timedelta(seconds=5 * k)
            answered: dict[str, Any] = {
                "type": question["type"],
                "answer": {
                    "content": answer,
                    "started": _ms(asked),
                    "timestamp": _ms(asked + timedelta(seconds=2)),
                },
            }
            # the phone's key order (results-example.json)
            for key in ("buttons", "description", "optional_id", "qualtrics_url"):
                if key in question:
                    answered[key] = question[key]
            content.append(answered)
        return {
            "video": video,
            "service": service,
            "timezone": "Europe/Warsaw",
            "reply_form": {
                "started": _ms(form_start),
                "ended": _ms(form_start + timedelta(seconds=22)),
                "content": content,
            },
            "device_info": self.device_info(participant, when),
            "memory_free": 105883994647 - 1000 * n,
            "memory_total": 127933894656,
            "playback_data": playback,
            "gyroscope_data": gyro,
            "accelerometer_data": accel,
            "playback_ended": _ms(end),
            "video_duration": duration,
            "timezone_offset": -int(when.replace(tzinfo=WARSAW).utcoffset().total_seconds() // 60),  # type: ignore[union-attr]
            "playback_started": _ms(start),
            "query_started": _ms(end + timedelta(seconds=1)),
            "user_feedback": [],
        }

    def device_info(self, participant: SynthParticipant, when: datetime) -> dict[str, Any]:
        if participant.changes_phone and when.date() >= self.middle_day:
            return {
                "os": "android",
                "brand": "google",
                "model": "Pixel 7",
                "os_name": "Android",
                "model_id": None,
                "os_version": "14",
                "manufacturer": "Google",
                "device_year_class": 2022,
                "platform_api_level": 34,
            }
        return {
            "os": "android" if participant.index % 3 else "ios",
            "brand": "Samsung" if participant.index % 3 else "Apple",
            "model": "SM-G991B" if participant.index % 3 else "iPhone 11",
            "os_name": "Android" if participant.index % 3 else "iOS",
            "model_id": None if participant.index % 3 else "iPhone12,1",
            "os_version": "13" if participant.index % 3 else "15.0.2",
            "manufacturer": "samsung" if participant.index % 3 else "Apple",
            "device_year_class": 2021 if participant.index % 3 else 2019,
            "platform_api_level": 33 if participant.index % 3 else None,
        }

    # -- files ----------------------------------------------------------------------------

    def video_bytes(self, name: str) -> bytes:
        rng = random.Random(f"{self.params.seed}/video/{name}")
        return rng.randbytes(int(self.params.video_mb * 1_000_000))

    def write_videos(self, media_root: Path) -> list[Path]:
        """Videos with their ``.md5sum`` sidecars (lowercase hex md5 and a newline)."""
        written = []
        for name in VIDEO_NAMES:
            data = self.video_bytes(name)
            target = media_root / name
            write_bytes_atomic(target, data)
            digest = hashlib.md5(data).hexdigest()
            write_bytes_atomic(target.with_name(target.name + ".md5sum"), f"{digest}\n".encode())
            written.append(target)
        return written

    def write_experimenter_files(self, folder: Path) -> None:
        """users.csv/.xlsx and the schedule files exactly as an experimenter would keep them."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["name", "surname", "phone", "external_id", "start_date", "stop_date"])
        for p in self.participants:
            writer.writerow(
                [
                    p.name,
                    p.surname,
                    p.phone,
                    p.external_id,
                    p.start.replace(tzinfo=None).isoformat(),
                    p.stop.replace(tzinfo=None).isoformat(),
                ]
            )
        write_bytes_atomic(folder / "users.csv", out.getvalue().encode("utf-8"))
        write_bytes_atomic(folder / "users.xlsx", _xlsx(out.getvalue()))
        for p in self.participants:
            write_bytes_atomic(
                folder / "schedules" / f"schedule_{p.name}.json",
                orjson.dumps(p.schedule, option=orjson.OPT_INDENT_2) + b"\n",
            )


def _xlsx(csv_text: str) -> bytes:
    """The same table as an Excel workbook, as experimenters usually keep it."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in csv.reader(io.StringIO(csv_text)):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _naive(value: datetime) -> str:
    """Naive Warsaw time, as the fill client sends dates."""
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


def _ms(value: datetime) -> str:
    """Phone timestamps: milliseconds with the Warsaw offset."""
    return value.replace(tzinfo=WARSAW).isoformat(timespec="milliseconds")
