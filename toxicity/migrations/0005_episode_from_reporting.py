"""Move the derived Episode model from reporting to toxicity, state only: the table stays
(reporting_episode) and is renamed in the next migration. Episodes are derived from the course
(toxicity.course), and the course's writer stores them; toxicity never imports reporting."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("toxicity", "0004_subject_trial"),
        ("reporting", "0003_history_append_only"),
        ("trials", "0004_death_reentry_after_void"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Episode',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('crs', 'CRS'), ('icans', 'ICANS')], max_length=5)),
                        ('episode_number', models.PositiveSmallIntegerField(help_text='1, 2, ... per subject and kind, in onset order.')),
                        ('term', models.CharField(max_length=80)),
                        ('scale', models.CharField(help_text="The trial's grading scale for this kind.", max_length=12)),
                        ('onset_date', models.DateField()),
                        ('onset_study_day', models.SmallIntegerField(null=True)),
                        ('max_grade', models.PositiveSmallIntegerField()),
                        ('max_grade_date', models.DateField()),
                        ('resolution_date', models.DateField(help_text='First grade-0 day after the episode; empty while ongoing.', null=True)),
                        ('duration_days', models.PositiveSmallIntegerField(help_text='Resolution - onset; ongoing: up to the last assessment.')),
                        ('ongoing', models.BooleanField()),
                        ('last_assessment_date', models.DateField()),
                        ('tocilizumab_doses', models.PositiveSmallIntegerField(default=0)),
                        ('corticosteroid_given', models.BooleanField(default=False)),
                        ('dexamethasone_equivalent_mg', models.DecimalField(decimal_places=2, default=0, max_digits=9)),
                        ('anakinra_doses', models.PositiveSmallIntegerField(default=0)),
                        ('siltuximab_doses', models.PositiveSmallIntegerField(default=0)),
                        ('plasma_exchange_sessions', models.PositiveSmallIntegerField(default=0)),
                        ('plasma_exchange_volume_ml', models.PositiveIntegerField(default=0)),
                        ('hemofiltration_sessions', models.PositiveSmallIntegerField(default=0)),
                        ('hemofiltration_hours', models.DecimalField(decimal_places=1, default=0, max_digits=7)),
                        ('icu_days', models.PositiveSmallIntegerField(default=0)),
                        ('serious', models.BooleanField(help_text='Max grade >= 3, ICU stay or death during the episode.')),
                        ('outcome', models.CharField(help_text='recovered, not_recovered or fatal.', max_length=24)),
                        ('voided', models.BooleanField(default=False, help_text='No longer derived from the current data.')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('modified_at', models.DateTimeField(auto_now=True, db_index=True)),
                        ('subject', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='episodes', to='trials.subject')),
                    ],
                    options={
                        'db_table': 'reporting_episode',
                        'ordering': ['subject', 'kind', 'episode_number'],
                        'constraints': [models.UniqueConstraint(fields=('subject', 'kind', 'episode_number'), name='episode_number_unique')],
                    },
                ),
            ],
        ),
    ]
