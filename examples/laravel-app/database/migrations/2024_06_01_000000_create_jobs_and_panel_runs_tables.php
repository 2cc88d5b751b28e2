<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

class CreateJobsAndPanelRunsTables extends Migration
{
    public function up()
    {
        // The database queue's table, as `artisan queue:table` makes it.
        Schema::create('jobs', function (Blueprint $table) {
            $table->bigIncrements('id');
            $table->string('queue')->index();
            $table->longText('payload');
            $table->unsignedTinyInteger('attempts');
            $table->unsignedInteger('reserved_at')->nullable();
            $table->unsignedInteger('available_at');
            $table->unsignedInteger('created_at');
        });

        // What the queued job and the scheduled command did, and in which release.
        Schema::create('panel_runs', function (Blueprint $table) {
            $table->id();
            $table->string('kind');
            $table->string('label');
            $table->string('release');
            $table->timestamp('started_at')->nullable();
            $table->timestamp('finished_at')->nullable();
        });
    }

    public function down()
    {
        Schema::dropIfExists('panel_runs');
        Schema::dropIfExists('jobs');
    }
}
