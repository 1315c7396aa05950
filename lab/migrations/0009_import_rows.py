# The rows of an import report as a table (lab.models_imports.ImportRow), so a page of one
# outcome is one indexed query; the reports kept as JSON on earlier imports are moved into it.

import django.db.models.deletion
from django.db import migrations, models

OUTCOMES = {"created", "merged", "conflict", "refused"}


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def move_reports(apps, schema_editor):
    AlloyImport = apps.get_model("lab", "AlloyImport")
    ImportRow = apps.get_model("lab", "ImportRow")
    Alloy = apps.get_model("lab", "Alloy")
    for job in AlloyImport.objects.exclude(report=[]).iterator():
        entries = [e for e in (job.report or []) if isinstance(e, dict)]
        known = set(Alloy.objects.filter(pk__in={e.get("alloy_id") for e in entries if e.get("alloy_id")}).values_list("pk", flat=True))
        ImportRow.objects.bulk_create(
            [
                ImportRow(
                    alloy_import=job,
                    line=max(0, int(_number(e.get("line")) or 0)),
                    composition=str(e.get("composition") or ""),
                    formula=str(e.get("formula") or "")[:255],
                    outcome=e.get("outcome") if e.get("outcome") in OUTCOMES else "refused",
                    reason=str(e.get("reason") or ""),
                    alloy_id=e.get("alloy_id") if e.get("alloy_id") in known and not job.dry_run else None,
                )
                for e in entries
            ],
            batch_size=2000,
        )
        AlloyImport.objects.filter(pk=job.pk).update(report=[])


class Migration(migrations.Migration):

    dependencies = [
        ('lab', '0008_corrections'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportRow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('line', models.PositiveIntegerField(help_text='Line (CSV) or row (XLSX) in the uploaded file')),
                ('composition', models.TextField(blank=True, help_text='As written in the file')),
                ('formula', models.CharField(blank=True, help_text='As parsed (empty when refused)', max_length=255)),
                ('outcome', models.CharField(choices=[('created', 'created'), ('merged', 'merged'), ('conflict', 'conflict'), ('refused', 'refused')], max_length=16)),
                ('reason', models.TextField(blank=True)),
                ('tg_k', models.FloatField(blank=True, null=True)),
                ('tx_k', models.FloatField(blank=True, null=True)),
                ('tl_k', models.FloatField(blank=True, null=True)),
                ('alloy', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='lab.alloy')),
                ('alloy_import', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rows', to='lab.alloyimport')),
            ],
            options={
                'ordering': ['alloy_import', 'line'],
                'indexes': [models.Index(fields=['alloy_import', 'line'], name='lab_importrow_line'), models.Index(fields=['alloy_import', 'outcome', 'line'], name='lab_importrow_outcome')],
            },
        ),
        migrations.RunPython(move_reports, migrations.RunPython.noop, elidable=True),
    ]
