from django.urls import path

from core.views import job_action_view

from . import views

app_name = "mining"
urlpatterns = [
    path("", views.review_queue, name="review_queue"),
    path("review/", views.review_queue, name="review"),
    path("records/<int:pk>/", views.record_detail, name="record_detail"),
    path("records/<int:pk>/approve/", views.record_approve, name="record_approve"),
    path("records/<int:pk>/reject/", views.record_reject, name="record_reject"),
    path("records/<int:pk>/reopen/", views.record_reopen, name="record_reopen"),
    path("batches/", views.batch_list, name="batch_list"),
    path("batches/new/", views.batch_create, name="batch_create"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/status.json", views.batch_status, name="batch_status"),
    path("batches/<int:pk>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("batches/<int:pk>/rerun/", views.batch_rerun, name="batch_rerun"),
    path("batches/<int:pk>/approve-clean/", views.batch_bulk_approve, name="batch_bulk_approve"),
    path("sources/", views.source_list, name="source_list"),
    path("sources/new/", views.source_create, name="source_create"),
    path("sources/<int:pk>/", views.source_detail, name="source_detail"),
    # Cancel / retry of the jobs behind a source's PDF and a batch's bulk approval (core.jobs).
    path("pdf-readings/<int:pk>/<str:action>/",
         job_action_view("mining.PdfReading", detail_url=lambda job: job.source.get_absolute_url()), name="pdf_reading_action"),
    path("bulk-approvals/<int:pk>/<str:action>/",
         job_action_view("mining.BulkApproval", detail_url=lambda job: job.batch.get_absolute_url()), name="bulk_approval_action"),
]
