"""HTTP API under /api/v1: one MethodView per resource (URL rule); an action (open, start, close,
cancel, retire, withdraw) is its own small resource. Every endpoint authenticates the bearer token
and checks that the unit concerned (a course's owner, a class's or session's organising unit) lies
in the caller's subtree; the checks live in service.py next to the loads. List endpoints return
only the caller's subtree. Each method builds the command (commands.py) from the validated input and
calls its handler (service.py) with the caller and `stores()`."""
from __future__ import annotations

from flask.views import MethodView

from platformkit.auth import current_caller
from platformkit.idempotency import IdempotencyHeader
from platformkit.web import Blueprint, error_responses, requires

from . import commands as c
from . import service
from .stores import stores
from .schemas import (AttendanceIn, AttendanceOut, CancelIn, CertificateOut, ClassIn, ClassOut, ClassPage, ClassQuery,
                      CompletionIn, CompletionOut, CourseIn, CourseOut, CoursePage, CourseQuery, DatedIn, DisseminationIn,
                      DisseminationOut, DisseminationPage, EnrolmentIn, EnrolmentOut, MemberEnrolmentQuery, PageQuery,
                      WithdrawIn)

ERRORS = {
    400: "invalid input; `errors` names each field",
    401: "missing or invalid bearer token",
    403: "the unit is outside the caller's subtree, or the caller's role may not change data",
    404: "not found",
    409: "conflict (duplicate code, already enrolled, already assessed)",
    412: "changed by someone else meanwhile; retry",
    422: "a training rule refuses it, or the Idempotency-Key was used for a different request; "
         "`errors` names the field (or the header)",
}
# The creating POSTs take an Idempotency-Key header (platformkit/idempotency.py): a retry with the
# same key answers what the first request answered, with the same status, and creates nothing.


def errors(bp: Blueprint, *codes: int):
    """Documents the error responses of an endpoint (all share platformkit's ApiError)."""
    return error_responses(bp, ERRORS, codes)


def _tuples(body: dict) -> dict:
    """Lists as tuples: commands are frozen."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}


def _dissemination(body: dict, key: str | None) -> c.RecordDissemination:
    heads = tuple(c.HeadCount(**r) for r in body.get("reached", ()))
    return c.RecordDissemination(**{**_tuples(body), "reached": heads}, idempotency_key=key)


READ = (401, 403, 404)
WRITE = (400, 401, 403, 404, 409, 412, 422)

# ---------------------------------------------------------------- courses
courses = Blueprint("courses", __name__, url_prefix="/courses",
                    description="Course catalogue (đào tạo, bồi dưỡng, tập huấn): owned by a unit, usable below it")


@courses.route("")
class Courses(MethodView):
    @requires("training.manage")
    @courses.arguments(IdempotencyHeader, location="headers")
    @courses.arguments(CourseIn)
    @courses.response(201, CourseOut, description="Registered (or, for a retry with the same Idempotency-Key, "
                                                  "registered by the first request)")
    @errors(courses, 400, 401, 403, 409, 422)
    def post(self, headers, body):
        """Register a course in the owner unit's catalogue"""
        return service.register_course(c.RegisterCourse(**body, idempotency_key=headers.get("idempotency_key")),
                                       current_caller(), stores())

    @requires("read")
    @courses.arguments(CourseQuery, location="query")
    @courses.response(200, CoursePage)
    @errors(courses, 400, 401, 403)
    def get(self, query):
        """Courses of the caller's subtree and of the units above it"""
        return service.list_courses(query, current_caller(), stores())


@courses.route("/<course_id>")
class Course(MethodView):
    @requires("read")
    @courses.response(200, CourseOut)
    @errors(courses, *READ)
    def get(self, course_id):
        """One course"""
        return service.get_course(course_id, current_caller(), stores())


@courses.route("/<course_id>/retire")
class CourseRetire(MethodView):
    @requires("training.manage")
    @courses.response(200, CourseOut)
    @errors(courses, *WRITE)
    def post(self, course_id):
        """Retire a course: no new classes of it"""
        return service.retire_course(c.RetireCourse(course_id=course_id), current_caller(), stores())


# ---------------------------------------------------------------- classes
classes = Blueprint("classes", __name__, url_prefix="/classes",
                    description="Classes: planned -> open -> running -> closed, or cancelled")


@classes.route("")
class Classes(MethodView):
    @requires("training.manage")
    @classes.arguments(IdempotencyHeader, location="headers")
    @classes.arguments(ClassIn)
    @classes.response(201, ClassOut, description="Planned (or, for a retry with the same Idempotency-Key, "
                                                "as the first request planned it)")
    @errors(classes, 400, 401, 403, 409, 422)
    def post(self, headers, body):
        """Plan a class of a course (status planned)"""
        return service.plan_class(c.PlanClass(**_tuples(body), idempotency_key=headers.get("idempotency_key")),
                                  current_caller(), stores())

    @requires("read")
    @classes.arguments(ClassQuery, location="query")
    @classes.response(200, ClassPage)
    @errors(classes, 400, 401, 403)
    def get(self, query):
        """Classes organised in the caller's subtree, the latest start first (then by id).

        A page may hold fewer than `limit` classes while `next_cursor` is not null: a sparse filter
        over a large subtree is read a bounded number of periods per page; follow the cursor."""
        return service.list_classes(query, current_caller(), stores())


@classes.route("/<class_id>")
class Class(MethodView):
    @requires("read")
    @classes.response(200, ClassOut)
    @errors(classes, *READ)
    def get(self, class_id):
        """One class (enrolments: /classes/{id}/enrolments)"""
        return service.get_class(class_id, current_caller(), stores())


@classes.route("/<class_id>/open")
class ClassOpen(MethodView):
    @requires("training.manage")
    @classes.response(200, ClassOut)
    @errors(classes, *WRITE)
    def post(self, class_id):
        """Open enrolment (planned -> open)"""
        return service.open_class(c.OpenClass(class_id=class_id), current_caller(), stores())


@classes.route("/<class_id>/start")
class ClassStart(MethodView):
    @requires("training.manage")
    @classes.response(200, ClassOut)
    @errors(classes, *WRITE)
    def post(self, class_id):
        """Start the class (open -> running): attendance and completion from now on"""
        return service.start_class(c.StartClass(class_id=class_id), current_caller(), stores())


@classes.route("/<class_id>/close")
class ClassClose(MethodView):
    @requires("training.manage")
    @classes.arguments(DatedIn)
    @classes.response(200, ClassOut)
    @errors(classes, *WRITE)
    def post(self, body, class_id):
        """Close the class (running -> closed) once every enrolment was assessed"""
        return service.close_class(c.CloseClass(class_id=class_id, **body), current_caller(), stores())


@classes.route("/<class_id>/cancel")
class ClassCancel(MethodView):
    @requires("training.manage")
    @classes.arguments(CancelIn)
    @classes.response(200, ClassOut)
    @errors(classes, *WRITE)
    def post(self, body, class_id):
        """Cancel the class (before any certificate was issued)"""
        return service.cancel_class(c.CancelClass(class_id=class_id, **body), current_caller(), stores())


# ---------------------------------------------------------------- enrolments
enrolments = Blueprint("enrolments", __name__, url_prefix="",
                       description="Enrolment of active members; capacity holds under concurrency")


@enrolments.route("/classes/<class_id>/enrolments")
class ClassEnrolments(MethodView):
    @requires("training.record")
    @enrolments.arguments(IdempotencyHeader, location="headers")
    @enrolments.arguments(EnrolmentIn)
    @enrolments.response(201, EnrolmentOut, description="Enrolled (or, for a retry with the same Idempotency-Key, "
                                                        "the enrolment as the first request answered it)")
    @errors(enrolments, *WRITE)
    def post(self, headers, body, class_id):
        """Enrol an active member of the organising unit's subtree (class must be open, not full)"""
        return service.enrol(c.EnrolMember(class_id=class_id, **body, idempotency_key=headers.get("idempotency_key")),
                             current_caller(), stores())

    @requires("read")
    @enrolments.response(200, EnrolmentOut(many=True))
    @errors(enrolments, *READ)
    def get(self, class_id):
        """Enrolments of a class with attendance and outcome"""
        return service.list_enrolments(class_id, current_caller(), stores())


@enrolments.route("/classes/<class_id>/enrolments/<member_id>/withdraw")
class EnrolmentWithdraw(MethodView):
    @requires("training.record")
    @enrolments.arguments(WithdrawIn)
    @enrolments.response(200, EnrolmentOut)
    @errors(enrolments, *WRITE)
    def post(self, body, class_id, member_id):
        """Withdraw an enrolment not yet assessed (frees the seat)"""
        return service.withdraw(c.WithdrawEnrolment(class_id=class_id, member_id=member_id, **body),
                                current_caller(), stores())


@enrolments.route("/enrolments")
class Enrolments(MethodView):
    @requires("read")
    @enrolments.arguments(MemberEnrolmentQuery, location="query")
    @enrolments.response(200, EnrolmentOut(many=True))
    @errors(enrolments, 400, 401)
    def get(self, query):
        """A member's training history visible to the caller"""
        return service.member_enrolments(query["member_id"], current_caller(), stores())


# ---------------------------------------------------------------- attendance
attendance = Blueprint("attendance", __name__, url_prefix="/classes",
                       description="Attendance per class day (roll call)")


@attendance.route("/<class_id>/attendance")
class ClassAttendance(MethodView):
    @requires("training.record")
    @attendance.arguments(AttendanceIn)
    @attendance.response(200, AttendanceOut)
    @errors(attendance, *WRITE)
    def post(self, body, class_id):
        """Record the roll call of one class day (replaces an earlier one for that day)"""
        return service.record_attendance(c.RecordAttendance(class_id=class_id, **_tuples(body)), current_caller(),
                                         stores())


# ---------------------------------------------------------------- completion
completion = Blueprint("completion", __name__, url_prefix="/classes",
                       description="Completion: attendance share and score decide; completed members get a certificate")


@completion.route("/<class_id>/enrolments/<member_id>/completion")
class EnrolmentCompletion(MethodView):
    @requires("training.record")
    @completion.arguments(IdempotencyHeader, location="headers")
    @completion.arguments(CompletionIn)
    @completion.response(200, CompletionOut, description="Assessed (or, for a retry with the same Idempotency-Key, "
                                                         "as the first request assessed it: one certificate)")
    @errors(completion, *WRITE)
    def post(self, headers, body, class_id, member_id):
        """Assess one member: completed (certificate issued) or not_completed (reason attendance/score)"""
        return service.assess_completion(
            c.AssessCompletion(class_id=class_id, member_id=member_id, **body,
                               idempotency_key=headers.get("idempotency_key")), current_caller(), stores())


# ---------------------------------------------------------------- certificates
certificates = Blueprint("certificates", __name__, url_prefix="", description="Certificates issued on completion")


@certificates.route("/certificates/<number>")
class Certificate(MethodView):
    @requires("read")
    @certificates.response(200, CertificateOut)
    @errors(certificates, *READ)
    def get(self, number):
        """Look up a certificate by its number"""
        return service.get_certificate(number, current_caller(), stores())


@certificates.route("/classes/<class_id>/certificates")
class ClassCertificates(MethodView):
    @requires("read")
    @certificates.response(200, CertificateOut(many=True))
    @errors(certificates, *READ)
    def get(self, class_id):
        """Certificates issued in a class"""
        return service.class_certificates(class_id, current_caller(), stores())


# ---------------------------------------------------------------- dissemination sessions
dissemination = Blueprint("dissemination", __name__, url_prefix="/dissemination-sessions",
                          description="Sessions disseminating resolutions (quán triệt nghị quyết): the members "
                                      "reached, by member id, and head counts of attendees not identified")


@dissemination.route("")
class DisseminationSessions(MethodView):
    @requires("training.record")
    @dissemination.arguments(IdempotencyHeader, location="headers")
    @dissemination.arguments(DisseminationIn)
    @dissemination.response(201, DisseminationOut, description="Recorded (or, for a retry with the same "
                                                                "Idempotency-Key, the session the first request recorded)")
    @errors(dissemination, 400, 401, 403, 422)
    def post(self, headers, body):
        """Record a dissemination session: the members reached (`member_ids`: active members of the
        organiser's subtree, each counted once) and head counts per unit of attendees not identified
        (`reached`). The session derives the members reached per unit and the CĐCS reached; only
        identified members count toward the shares of members and CĐCS reached."""
        return service.record_dissemination(_dissemination(body, headers.get("idempotency_key")), current_caller(),
                                            stores())

    @requires("read")
    @dissemination.arguments(PageQuery, location="query")
    @dissemination.response(200, DisseminationPage)
    @errors(dissemination, 400, 401, 403)
    def get(self, query):
        """Sessions organised in the caller's subtree (without `member_ids`: GET one session for them)"""
        return service.list_dissemination(query, current_caller(), stores())


@dissemination.route("/<session_id>")
class DisseminationSession(MethodView):
    @requires("read")
    @dissemination.response(200, DisseminationOut)
    @errors(dissemination, *READ)
    def get(self, session_id):
        """One dissemination session"""
        return service.get_dissemination(session_id, current_caller(), stores())


BLUEPRINTS = [courses, classes, enrolments, attendance, completion, certificates, dissemination]


def _authenticate() -> None:
    """Every endpoint authenticates before anything is looked up: without a valid token an unknown
    course, class, session or certificate number answers 401 like a known one, not 404 (certificate
    numbers are derived from class codes, so existence must not be probed without a token)."""
    current_caller()


for _bp in BLUEPRINTS:
    _bp.before_request(_authenticate)
